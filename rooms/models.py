"""Consultation domain objects with explicit, JSON-able (de)serialisation.

Times are POSIX seconds (floats) inside the domain and the store; the wire shows them as ISO 8601
UTC via :func:`iso`. A participant's id is its token subject, so subjects must be unique across
roles (outlet ids, staff ids, ``guest-<random>`` for guests).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from rooms.roles import Role


def iso(at: float | None) -> str | None:
    """POSIX seconds as ISO 8601 UTC (``2026-11-23T09:00:00Z``), or ``None``."""
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class ConsultationState(StrEnum):
    """waiting → offered → active → ended (offered may fall back to waiting)."""

    WAITING = "waiting"
    OFFERED = "offered"
    ACTIVE = "active"
    ENDED = "ended"

    @property
    def queued(self) -> bool:
        return self in (ConsultationState.WAITING, ConsultationState.OFFERED)


class PresenceStatus(StrEnum):
    AVAILABLE = "available"
    BUSY = "busy"
    AWAY = "away"


@dataclass
class Participant:
    """Someone in a consultation; ``admitted`` is false for a guest still at the door."""

    participant_id: str
    role: Role
    name: str
    connected: bool = False
    admitted: bool = True
    joined_at: float | None = None
    disconnected_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "role": self.role.value}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Participant:
        return cls(**{**data, "role": Role(data["role"])})

    def to_wire(self) -> dict[str, Any]:
        return {
            "participant_id": self.participant_id,
            "role": self.role.value,
            "name": self.name,
            "connected": self.connected,
            "admitted": self.admitted,
        }


@dataclass(frozen=True)
class Consent:
    """Recorded consent to record: who gave it, when, at which outlet, for what purpose."""

    given_by: str
    given_at: float
    outlet_id: str
    purpose: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Consent:
        return cls(**data)

    def to_wire(self) -> dict[str, Any]:
        return {**self.to_dict(), "given_at": iso(self.given_at)}


@dataclass
class Consultation:
    """One consultation request and, once accepted, its room.

    ``queued_at`` is when it joined the queue; it survives declines and offer timeouts so the
    request keeps its place. ``version`` is bumped by the store on every write (optimistic lock).
    """

    id: str
    service: str
    outlet_id: str
    patient_ref: str
    guardian_present: bool
    urgent: bool
    appointment_at: float | None
    created_at: float
    queued_at: float
    state: ConsultationState = ConsultationState.WAITING
    version: int = 0
    front: bool = False
    clinician_id: str | None = None
    offered_to: str | None = None
    offer_expires_at: float | None = None
    declined_by: list[str] = field(default_factory=list)
    participants: dict[str, Participant] = field(default_factory=dict)
    consent: Consent | None = None
    recording: bool = False
    notes: str = ""
    started_at: float | None = None
    empty_since: float | None = None
    ended_at: float | None = None
    ended_reason: str | None = None
    # The registered patient (records database), when the outlet checked in a known child.
    patient_id: str | None = None
    # A booked appointment's clinician, offered it first until ``prefer_until`` while online.
    appointment_id: str | None = None
    preferred_clinician: str | None = None
    prefer_until: float | None = None

    @property
    def is_open(self) -> bool:
        return self.state is not ConsultationState.ENDED

    def admitted_participants(self) -> list[Participant]:
        return [p for p in self.participants.values() if p.admitted]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = self.state.value
        data["participants"] = {pid: p.to_dict() for pid, p in self.participants.items()}
        data["consent"] = self.consent.to_dict() if self.consent else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Consultation:
        values = dict(data)
        values["state"] = ConsultationState(values["state"])
        values["participants"] = {
            pid: Participant.from_dict(p) for pid, p in values["participants"].items()
        }
        values["consent"] = Consent.from_dict(values["consent"]) if values["consent"] else None
        values["declined_by"] = list(values["declined_by"])
        return cls(**values)

    def copy(self) -> Consultation:
        return Consultation.from_dict(self.to_dict())

    def to_wire(self, include_notes: bool = False) -> dict[str, Any]:
        """The client view; clinical notes only for the treating clinician."""
        wire: dict[str, Any] = {
            "id": self.id,
            "service": self.service,
            "state": self.state.value,
            "outlet_id": self.outlet_id,
            "patient_ref": self.patient_ref,
            "patient_id": self.patient_id,
            "guardian_present": self.guardian_present,
            "urgent": self.urgent,
            "appointment_at": iso(self.appointment_at),
            "created_at": iso(self.created_at),
            "clinician_id": self.clinician_id,
            "offered_to": self.offered_to,
            "ended_reason": self.ended_reason,
            "participants": [p.to_wire() for p in self.participants.values()],
            "consent": self.consent.to_wire() if self.consent else None,
            "recording": self.recording,
            "appointment_id": self.appointment_id,
            "preferred_clinician": self.preferred_clinician,
        }
        if include_notes:
            wire["notes"] = self.notes
        return wire


@dataclass(frozen=True)
class Invite:
    """A time-limited, single-use invitation for one guest (parent, interpreter)."""

    code: str
    consultation_id: str
    created_by: str
    guest_role: str
    created_at: float
    expires_at: float
    redeemed_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Invite:
        return cls(**data)


@dataclass(frozen=True)
class AuditEvent:
    """One line of a consultation's audit trail."""

    consultation_id: str
    at: float
    actor: str
    role: str
    action: str
    details: dict[str, Any] = field(default_factory=dict)
    # Set on entries about a patient's record (a look-up, a history read, a report).
    patient_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditEvent:
        return cls(**data)

    def to_wire(self) -> dict[str, Any]:
        return {**self.to_dict(), "at": iso(self.at)}


@dataclass(frozen=True)
class ClinicianPresence:
    """A clinician's chosen status and services; ``online`` while a connection is up.

    ``seen_at`` is refreshed by the process holding the connection, so a crashed process's
    clinicians count as offline after the presence timeout. ``version`` is bumped by the store on
    every write: presence is compare-and-set like consultations, so a background refresh never
    overwrites a status the clinician chose meanwhile.
    """

    clinician_id: str
    role: Role
    name: str
    status: PresenceStatus
    services: tuple[str, ...]
    online: bool
    seen_at: float
    available_since: float
    version: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "role": self.role.value,
            "status": self.status.value,
            "services": list(self.services),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClinicianPresence:
        return cls(
            **{
                **data,
                "role": Role(data["role"]),
                "status": PresenceStatus(data["status"]),
                "services": tuple(data["services"]),
            }
        )

    def is_live(self, now: float, timeout_s: float) -> bool:
        return self.online and now - self.seen_at <= timeout_s

    def to_wire(self, now: float, timeout_s: float) -> dict[str, Any]:
        return {
            "clinician_id": self.clinician_id,
            "role": self.role.value,
            "name": self.name,
            "status": self.status.value if self.is_live(now, timeout_s) else "offline",
            "services": list(self.services),
        }


@dataclass(frozen=True)
class QueueEntry:
    """A waiting consultation's place in its service queue, as shown on the wire."""

    consultation_id: str
    service: str
    outlet_id: str
    urgent: bool
    appointment_at: float | None
    waiting_s: float
    position: int
    state: ConsultationState
    estimated_wait_s: float | None

    def to_wire(self) -> dict[str, Any]:
        return {
            "consultation_id": self.consultation_id,
            "service": self.service,
            "outlet_id": self.outlet_id,
            "urgent": self.urgent,
            "appointment_at": iso(self.appointment_at),
            "waiting_s": round(self.waiting_s, 1),
            "position": self.position,
            "state": self.state.value,
            "estimated_wait_s": (
                None if self.estimated_wait_s is None else round(self.estimated_wait_s)
            ),
        }


@dataclass(frozen=True)
class CheckIn:
    """An outlet's consultation request."""

    service: str
    outlet_id: str
    patient_ref: str
    guardian_present: bool
    urgent: bool = False
    appointment_at: float | None = None
    patient_id: str | None = None
    appointment_id: str | None = None
    preferred_clinician: str | None = None
