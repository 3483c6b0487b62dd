"""What the audit trail records: the action names and the server's own identity."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from rooms.roles import Role


class AuditAction(StrEnum):
    """Every action the audit trail records; the values are the stored (and documented) names."""

    CHECK_IN = "check_in"
    OFFER = "offer"
    OFFER_WITHDRAWN = "offer_withdrawn"
    ACCEPT = "accept"
    PICK = "pick"
    DECLINE = "decline"
    TRANSFER = "transfer"
    JOIN = "join"
    REJOIN = "rejoin"
    LEAVE = "leave"
    DISCONNECTED = "disconnected"
    END = "end"
    INVITE = "invite"
    INVITE_REDEEMED = "invite_redeemed"
    ADMIT = "admit"
    REFUSE = "refuse"
    NOTES = "notes"
    CONSENT = "consent"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    RECORDING_STARTED = "recording_started"
    RECORDING_STOPPED = "recording_stopped"
    RECORDING_RECOVERED = "recording_recovered"
    RECORDING_ACKNOWLEDGED = "recording_acknowledged"
    RECORDINGS_LISTED = "recordings_listed"
    RECORDING_ACCESSED = "recording_accessed"
    RECORDING_EXPORTED = "recording_exported"
    RECORDING_LEGAL_HOLD = "recording_legal_hold"
    RECORDING_DELETED = "recording_deleted"
    RECORDING_CONTINUED = "recording_continued"
    MEDIA_PINNED = "media_pinned"
    MEDIA_MOVED = "media_moved"
    PATIENT_REGISTERED = "patient_registered"
    PATIENT_LOOKUP = "patient_lookup"
    PATIENT_HISTORY_READ = "patient_history_read"
    REPORT_SAVED = "report_saved"
    REPORT_FINALISED = "report_finalised"
    REPORT_AMENDED = "report_amended"
    REPORT_READ = "report_read"
    REPORT_SHARE_READ = "report_share_read"
    REPORT_SHARE_REFUSED = "report_share_refused"
    PHOTO_REQUESTED = "photo_requested"
    PHOTO_ADDED = "photo_added"
    PHOTO_VIEWED = "photo_viewed"
    PHOTO_SHARE_READ = "photo_share_read"
    CHAT_WAITING_MESSAGE = "chat_waiting_message"
    CHAT_READ = "chat_read"
    SCHEDULE_SET = "schedule_set"
    APPOINTMENT_BOOKED = "appointment_booked"
    APPOINTMENT_CANCELLED = "appointment_cancelled"
    APPOINTMENT_CHECKED_IN = "appointment_checked_in"
    APPOINTMENT_NO_SHOW = "appointment_no_show"
    APPOINTMENT_REMINDED = "appointment_reminded"
    PROGRAMME_FIGURES_READ = "programme_figures_read"


@dataclass(frozen=True)
class SystemActor:
    """The server itself, acting on its own (offers, deadlines, automatic ends, retention)."""

    subject: str = "system"
    role: Role = Role.SYSTEM
    name: str = "system"
    services: frozenset[str] = frozenset()
    consultation_id: str | None = None


SYSTEM = SystemActor()
