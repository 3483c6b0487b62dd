"""Payload models of the consultation client events (see docs/protocol.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

Id = Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9._:-]+$")]
ServiceName = Annotated[str, Field(min_length=2, max_length=40, pattern=r"^[a-z][a-z0-9_-]+$")]
# Pseudonymous: letters, digits and a few separators, no spaces, so a name does not fit easily.
PatientRef = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._-]+$")]
EndReason = Literal["completed", "cancelled", "no_show", "technical", "referred", "other"]
# What a guardian consents to; the only purpose the server acts on is recording the call.
ConsentPurpose = Literal["recording"]


def _iso_text(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError("a time is ISO 8601 text with a zone")
    return value


# ISO 8601 text is the wire form of a time: parsed from text only (no numbers), zone required.
WireTime = Annotated[AwareDatetime, Field(strict=False), BeforeValidator(_iso_text)]


class Message(BaseModel):
    """Strict: no coercion (``"yes"`` is not a bool, ``"5"`` not an int), no unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class CheckInMessage(Message):
    """A registered patient (``patient_id``) or, for a child not registered, a ticket."""

    service: ServiceName
    outlet_id: Id
    patient_ref: PatientRef | None = None
    patient_id: Id | None = None
    guardian_present: bool
    urgent: bool = False
    appointment_at: WireTime | None = None
    # A booked appointment: its patient, time and clinician come from the booking.
    appointment_id: Id | None = None

    @model_validator(mode="after")
    def _names_the_patient(self) -> CheckInMessage:
        if self.patient_ref is None and self.patient_id is None and self.appointment_id is None:
            raise ValueError(
                "give patient_id (a registered patient), patient_ref or appointment_id"
            )
        return self


class ConsultationRef(Message):
    consultation_id: Id


class PresenceMessage(Message):
    status: Literal["available", "busy", "away"]
    services: Annotated[list[ServiceName], Field(max_length=20)] | None = None


class QueueListMessage(Message):
    service: ServiceName | None = None


class AcceptMessage(ConsultationRef):
    pick: bool = False


class EndMessage(ConsultationRef):
    reason: EndReason = "completed"


class InviteMessage(ConsultationRef):
    guest_role: Literal["parent", "interpreter", "guardian", "other"] = "parent"
    ttl_s: Annotated[int, Field(ge=60, le=86400)] = 900


class AdmitMessage(ConsultationRef):
    guest_id: Id
    admit: bool = True


class TransferMessage(ConsultationRef):
    service: ServiceName | None = None
    clinician_id: Id | None = None


class NotesMessage(ConsultationRef):
    notes: Annotated[str, Field(max_length=20000)]


class ConsentMessage(ConsultationRef):
    given: bool
    purpose: ConsentPurpose = "recording"


class EmptyMessage(Message):
    pass


class AuditListMessage(ConsultationRef):
    """One page of the audit log: ``cursor`` from the previous page's ``next_cursor``."""

    cursor: Annotated[int, Field(ge=0)] = 0
    limit: Annotated[int, Field(ge=1, le=1000)] | None = None
