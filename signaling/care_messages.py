"""Payload models of the patient and report events (see docs/protocol.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from records.templates import FIELD_NAME_PATTERN, MAX_FINDING_CHARS
from signaling.consultation_messages import ConsultationRef, Id, Message

# Names and free text: trimmed, no control characters (a printout and a log stay readable).
PLAIN_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40, pattern=PLAIN_TEXT)
]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9 -]{5,20}$")]
CardCode = Annotated[
    str, StringConstraints(min_length=4, max_length=16, pattern=r"^[0-9A-Za-z -]+$")
]
FindingName = Annotated[str, StringConstraints(pattern=FIELD_NAME_PATTERN)]
Finding = Annotated[str, StringConstraints(max_length=MAX_FINDING_CHARS, pattern=PLAIN_TEXT)]
LongText = Annotated[str, StringConstraints(max_length=4000)]


class RegisterPatientMessage(Message):
    display_name: Name
    birth_year: Annotated[int, Field(ge=1900, le=2100)]
    sex: Literal["female", "male", "unspecified"]
    guardian_name: Name | None = None
    guardian_phone: Phone | None = None
    # The guardian's consent to keep a record: the only accepted value is true.
    record_consent: Literal[True]


class LookupPatientMessage(Message):
    card_code: CardCode


class PatientRef(Message):
    patient_id: Id


class ReportFields(Message):
    findings: Annotated[dict[FindingName, Finding], Field(max_length=20)] = {}
    summary: LongText = ""
    advice: LongText = ""
    referral: Annotated[str, StringConstraints(max_length=400)] | None = None
    follow_up_days: Annotated[int, Field(ge=1, le=730)] | None = None
    shared_with_family: bool = False
    attachments: Annotated[list[Id], Field(max_length=20)] = []


class SaveReportMessage(ConsultationRef, ReportFields):
    pass


class AmendReportMessage(ConsultationRef, ReportFields):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=400)]


class GetReportMessage(ConsultationRef):
    version: Annotated[int, Field(ge=1, le=1000)] | None = None


class TemplateMessage(Message):
    service: Annotated[str, StringConstraints(min_length=2, max_length=40)]
