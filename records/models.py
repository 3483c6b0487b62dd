"""What the records package hands out: frozen dataclasses, never ORM rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def iso(at: datetime | None) -> str | None:
    """An aware timestamp on the wire (ISO 8601, UTC)."""
    return None if at is None else at.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Patient:
    """A registered child. ``guardian_*`` are only read by the registering outlet's staff."""

    patient_id: str
    card_code: str
    display_name: str
    birth_year: int
    sex: str
    registered_outlet: str
    registered_at: datetime
    guardian_name: str | None = None
    guardian_phone: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return {
            "patient_id": self.patient_id,
            "card_code": self.card_code,
            "display_name": self.display_name,
            "birth_year": self.birth_year,
            "sex": self.sex,
            "registered_outlet": self.registered_outlet,
            "registered_at": iso(self.registered_at),
        }


@dataclass(frozen=True)
class Visit:
    """One consultation as the records keep it."""

    consultation_id: str
    patient_id: str | None
    service: str
    outlet_id: str
    checked_in_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    clinician_id: str | None
    clinician_name: str | None
    outcome: str | None


@dataclass(frozen=True)
class Report:
    """One version of a consultation's report."""

    consultation_id: str
    patient_id: str | None
    service: str
    version: int
    status: str
    findings: dict[str, str]
    summary: str
    advice: str
    referral: str | None
    follow_up_days: int | None
    shared_with_family: bool
    clinician_id: str
    clinician_name: str
    saved_at: datetime
    finalised_at: datetime | None
    amend_reason: str | None = None
    attachments: tuple[str, ...] = field(default=())

    @property
    def final(self) -> bool:
        return self.status == "final"

    def to_wire(self) -> dict[str, Any]:
        return {
            "consultation_id": self.consultation_id,
            "patient_id": self.patient_id,
            "service": self.service,
            "version": self.version,
            "status": self.status,
            "findings": dict(self.findings),
            "summary": self.summary,
            "advice": self.advice,
            "referral": self.referral,
            "follow_up_days": self.follow_up_days,
            "shared_with_family": self.shared_with_family,
            "clinician_id": self.clinician_id,
            "clinician_name": self.clinician_name,
            "saved_at": iso(self.saved_at),
            "finalised_at": iso(self.finalised_at),
            "amend_reason": self.amend_reason,
            "attachments": list(self.attachments),
        }


@dataclass(frozen=True)
class Share:
    """The family's copy: where it is read and with which PIN."""

    share_code: str
    consultation_id: str
    pin: str
    expires_at: datetime

    def to_wire(self) -> dict[str, Any]:
        return {
            "share_code": self.share_code,
            "share_pin": self.pin,
            "expires_at": iso(self.expires_at),
        }


@dataclass(frozen=True)
class Photo:
    """A photo of a consultation (its image is read separately)."""

    photo_id: str
    consultation_id: str
    patient_id: str | None
    taken_at: datetime
    by: str
    by_role: str
    media_type: str
    width: int
    height: int
    size_bytes: int

    def to_wire(self) -> dict[str, Any]:
        return {
            "photo_id": self.photo_id,
            "consultation_id": self.consultation_id,
            "width": self.width,
            "height": self.height,
            "bytes": self.size_bytes,
            "media_type": self.media_type,
            "taken_at": iso(self.taken_at),
            "by": self.by,
            "by_role": self.by_role,
        }


@dataclass(frozen=True)
class Upload:
    """A photo upload under way (or done: ``photo_id`` set)."""

    upload_id: str
    consultation_id: str
    by: str
    by_role: str
    total_bytes: int
    received: int
    created_at: datetime
    expires_at: datetime
    photo_id: str | None


@dataclass(frozen=True)
class ChatMessage:
    """One chat message; ``to`` names the one outlet a waiting-room message went to."""

    seq: int
    message_id: str
    consultation_id: str
    sent_at: datetime
    sender: str
    name: str
    role: str
    text: str
    to: str | None = None

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "message_id": self.message_id,
            "consultation_id": self.consultation_id,
            "from": self.sender,
            "name": self.name,
            "role": self.role,
            "text": self.text,
            "sent_at": iso(self.sent_at),
        }
        if self.to is not None:
            wire["to"] = self.to
        return wire
