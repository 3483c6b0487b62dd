"""The ``patient.*`` and ``report.*`` events: validated, handed to
:class:`~records.care.CareRecord`."""

from __future__ import annotations

from typing import Any

from records.care import CareRecord, NewPatient
from records.models import Report, Share
from records.reports import ReportContent
from rooms.roles import CLINICIAN_ROLES, Role
from signaling.care_messages import (
    AmendReportMessage,
    GetReportMessage,
    LookupPatientMessage,
    PatientRef,
    RegisterPatientMessage,
    ReportFields,
    SaveReportMessage,
    TemplateMessage,
)
from signaling.consultation_messages import ConsultationRef
from signaling.dispatch import Ack, Caller, EventSpec, event

_READERS = [Role.OUTLET, *CLINICIAN_ROLES, Role.ADMIN]


class CareEvents:
    """Socket.IO handlers of the care record."""

    def __init__(self, care: CareRecord) -> None:
        self._care = care

    def specs(self) -> list[EventSpec[Any]]:
        return [
            event("patient.register", RegisterPatientMessage, [Role.OUTLET], self.register),
            event("patient.lookup", LookupPatientMessage, _READERS, self.lookup),
            event("patient.history", PatientRef, [*CLINICIAN_ROLES, Role.ADMIN], self.history),
            event("report.template", TemplateMessage, _READERS, self.template),
            event("report.save", SaveReportMessage, CLINICIAN_ROLES, self.save),
            event("report.finalise", ConsultationRef, CLINICIAN_ROLES, self.finalise),
            event("report.amend", AmendReportMessage, CLINICIAN_ROLES, self.amend),
            event("report.get", GetReportMessage, _READERS, self.get),
        ]

    async def register(self, caller: Caller, msg: RegisterPatientMessage) -> Ack:
        patient = await self._care.register(
            caller.identity,
            NewPatient(
                msg.display_name, msg.birth_year, msg.sex, msg.guardian_name, msg.guardian_phone
            ),
        )
        return {"ok": {"patient": patient.to_wire()}}

    async def lookup(self, caller: Caller, msg: LookupPatientMessage) -> Ack:
        patient = await self._care.lookup(caller.identity, msg.card_code)
        return {"ok": {"patient": patient.to_wire()}}

    async def history(self, caller: Caller, msg: PatientRef) -> Ack:
        visits = await self._care.history(caller.identity, msg.patient_id)
        return {"ok": {"patient_id": msg.patient_id, "visits": visits}}

    async def template(self, caller: Caller, msg: TemplateMessage) -> Ack:
        return {"ok": {"template": self._care.template(msg.service)}}

    async def save(self, caller: Caller, msg: SaveReportMessage) -> Ack:
        report = await self._care.save(caller.identity, msg.consultation_id, _content(msg))
        return {"ok": {"report": report.to_wire()}}

    async def finalise(self, caller: Caller, msg: ConsultationRef) -> Ack:
        report, share = await self._care.finalise(caller.identity, msg.consultation_id)
        return {"ok": _with_share(report, share)}

    async def amend(self, caller: Caller, msg: AmendReportMessage) -> Ack:
        report, share = await self._care.amend(
            caller.identity, msg.consultation_id, _content(msg), msg.reason
        )
        return {"ok": _with_share(report, share)}

    async def get(self, caller: Caller, msg: GetReportMessage) -> Ack:
        report, share = await self._care.get(caller.identity, msg.consultation_id, msg.version)
        return {"ok": _with_share(report, share)}


def _content(msg: ReportFields) -> ReportContent:
    return ReportContent(
        findings=dict(msg.findings),
        summary=msg.summary,
        advice=msg.advice,
        referral=msg.referral,
        follow_up_days=msg.follow_up_days,
        shared_with_family=msg.shared_with_family,
        attachments=tuple(msg.attachments),
    )


def _with_share(report: Report | None, share: Share | None) -> dict[str, Any]:
    """The report, and its share code and PIN for those who hand the family its copy."""
    result: dict[str, Any] = {"report": report.to_wire() if report else None}
    if share is not None:
        result.update(share.to_wire())
    return result
