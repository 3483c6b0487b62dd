"""The care record: patients known across visits, reports, the family's copy and history.

Every read and write goes through :mod:`rooms.access` and is audited with the patient's id.
Live facts (who treats a consultation, whether it is open) come from the consultation service;
everything that must last is in the records database.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from records.audit_trail import row_of
from records.codes import normalise_code
from records.columns import utc
from records.consents import ConsentEvidence, ConsentKind, consent_row
from records.consultation_audit import ConsultationAudit
from records.errors import (
    BadAttachment,
    BadCardCode,
    NoDraft,
    NotFinal,
    ReportClosed,
    ReportFinal,
    ShareLocked,
    UnknownCard,
)
from records.facade import Records
from records.keeper import ended_consultation_of
from records.models import Patient, Report, Share, iso
from records.reports import Handover, ReportAuthor, ReportContent
from records.shares import PinCheck
from records.tables import Table
from records.templates import Templates
from rooms import access
from rooms.access import Access
from rooms.audit import AuditAction
from rooms.errors import Expired, Forbidden, InvalidState, NotFound
from rooms.models import AuditEvent, Consultation, ConsultationState
from rooms.notify import Actor, Notifier
from rooms.roles import Role
from rooms.store import Store

logger = logging.getLogger(__name__)

HISTORY_VISITS = 50
# The purpose stored with the guardian's consent to keep a record.
RECORD_CONSENT_PURPOSE = "keep_patient_record"


class Consultations(Protocol):
    """What the care record reads of the live consultations."""

    async def get(self, actor: Actor, consultation_id: str) -> Consultation: ...


@dataclass(frozen=True)
class NewPatient:
    """What an outlet registers (the guardian consented to a record being kept)."""

    display_name: str
    birth_year: int
    sex: str
    guardian_name: str | None
    guardian_phone: str | None


@dataclass(frozen=True)
class CareConfig:
    """How long a report stays writable after the end; the per-consultation audit cap."""

    report_edit_s: float
    max_audit_per_action: int


class CareRecord:
    """Patients, reports, the family's copy and history."""

    def __init__(
        self,
        records: Records,
        consultations: Consultations,
        store: Store,
        notifier: Notifier,
        templates: Templates,
        config: CareConfig,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._records = records
        self._consultations = consultations
        self._store = store
        self._notifier = notifier
        self._templates = templates
        self._config = config
        self._clock = clock
        self._consultation_audit = ConsultationAudit(
            records.audit, config.max_audit_per_action, clock
        )

    # ----- patients ----------------------------------------------------------------------------

    async def register(self, actor: Actor, new: NewPatient) -> Patient:
        """An outlet registers a child once; the guardian's record consent is kept as evidence."""
        if actor.role is not Role.OUTLET:
            raise Forbidden("only outlets register patients")
        now = self._now()

        def evidence(patient: Patient) -> list[Table]:
            consent = ConsentEvidence(
                ConsentKind.RECORD,
                None,
                patient.patient_id,
                RECORD_CONSENT_PURPOSE,
                actor.subject,
                actor.role.value,
                actor.subject,
                now,
            )
            registered = self._patient_event(
                actor, patient.patient_id, AuditAction.PATIENT_REGISTERED
            )
            return [consent_row(consent), row_of(registered)]

        patient = await self._records.patients.register(
            new.display_name,
            new.birth_year,
            new.sex,
            new.guardian_name,
            new.guardian_phone,
            actor.subject,
            now,
            evidence,
        )
        logger.info("patient registered patient=%s outlet=%s", patient.patient_id, actor.subject)
        return patient

    async def lookup(self, actor: Actor, card_code: str) -> Patient:
        """The patient holding a card code (any outlet, admins, and a clinician treating or
        offered that patient, who hears only ``forbidden`` otherwise), audited."""
        access.require_patient_lookup(actor)
        code = normalise_code(card_code)
        patient = await self._records.patients.by_card_code(code) if code else None
        if actor.role.is_clinician:
            if patient is None:
                access.require_history(actor, "", [])
            else:
                await self.require_history(actor, patient.patient_id)
        if code is None:
            raise BadCardCode()
        if patient is None:
            raise UnknownCard()
        await self._patient_audit(actor, patient.patient_id, AuditAction.PATIENT_LOOKUP)
        return patient

    async def require_patient(self, patient_id: str) -> Patient:
        """The registered patient (a check-in names one); :class:`NotFound` if there is none."""
        patient = await self._records.patients.get(patient_id)
        if patient is None:
            raise NotFound("no such patient")
        return patient

    async def history(self, actor: Actor, patient_id: str) -> list[dict[str, Any]]:
        """The patient's visits, newest first, each with its final report (family view for
        counselling unless shared), for a clinician treating or offered the patient, or admins."""
        await self.require_history(actor, patient_id)
        visits = await self._records.visits.of_patient(patient_id, HISTORY_VISITS)
        ids = [v.consultation_id for v in visits]
        reports = await self._records.reports.latest_final(ids)
        photos = await self._records.photos.of_consultations(ids)
        await self._patient_audit(actor, patient_id, AuditAction.PATIENT_HISTORY_READ)
        return [
            {
                "consultation_id": v.consultation_id,
                "service": v.service,
                "outlet_id": v.outlet_id,
                "started_at": iso(v.started_at),
                "ended_at": iso(v.ended_at),
                "clinician_name": v.clinician_name,
                "report": self._history_view(reports.get(v.consultation_id)),
                "photo_ids": [p.photo_id for p in photos[v.consultation_id]],
            }
            for v in visits
        ]

    # ----- reports -----------------------------------------------------------------------------

    def template(self, service: str) -> dict[str, object]:
        return self._templates.for_service(service).to_wire()

    async def save(self, actor: Actor, consultation_id: str, content: ReportContent) -> Report:
        """Save the draft (while active, or within the report window after the end)."""
        consultation = await self._writable(actor, consultation_id)
        checked = await self._checked(consultation, content)
        report = await self._records.reports.save_draft(
            _author(actor, consultation), checked, self._now()
        )
        if report is None:
            raise ReportFinal()
        await self._audit(
            actor, consultation, AuditAction.REPORT_SAVED, {"version": report.version}
        )
        return report

    async def finalise(self, actor: Actor, consultation_id: str) -> tuple[Report, Share]:
        """Make the draft final; the outlet hears ``report.finalised`` with the family copy."""
        consultation = await self._writable(actor, consultation_id)
        handed = self._handover(actor, consultation, AuditAction.REPORT_FINALISED)
        done = await self._records.reports.finalise(consultation.id, self._now(), handed)
        if done is None:
            raise NoDraft()
        await self._announce(consultation, *done)
        return done

    async def amend(
        self, actor: Actor, consultation_id: str, content: ReportContent, reason: str
    ) -> tuple[Report, Share]:
        """A new final version with a reason; every earlier version stays readable."""
        consultation = await self._clinicians_consultation(actor, consultation_id)
        checked = await self._checked(consultation, content)
        handed = self._handover(actor, consultation, AuditAction.REPORT_AMENDED)
        done = await self._records.reports.amend(
            _author(actor, consultation), checked, reason, self._now(), handed
        )
        if done is None:
            raise NotFinal()
        await self._announce(consultation, *done)
        return done

    def _handover(self, actor: Actor, consultation: Consultation, action: AuditAction) -> Handover:
        """The share and the audit entry written with a final version."""

        def audit(report: Report) -> AuditEvent:
            return AuditEvent(
                consultation.id,
                self._clock(),
                actor.subject,
                actor.role.value,
                action.value,
                {"version": report.version},
                consultation.patient_id,
            )

        return Handover(self._records.shares, audit)

    async def get(
        self, actor: Actor, consultation_id: str, version: int | None
    ) -> tuple[Report | None, Share | None]:
        """The report (a version, or the newest): drafts for its clinician only; the final
        report (family view for the outlet) for its clinician, its outlet and admins."""
        consultation = await self._recorded(actor, consultation_id)
        own = access.may(actor, Access.REPORT_READ_DRAFT, consultation)
        access.require(actor, Access.REPORT_READ_FINAL, consultation)
        reports = self._records.reports
        if version is not None:
            report = await reports.version(consultation.id, version)
        else:
            report = await reports.latest(consultation.id)
        # Only amendments follow a final version, and they are final: a draft is version 1.
        if report is not None and not report.final and not own:
            report = None
        share = None
        if report is not None and report.final and actor.role is not Role.ADMIN:
            share = await self._records.shares.existing(consultation.id)
        if report is not None:
            await self._audit(
                actor, consultation, AuditAction.REPORT_READ, {"version": report.version}
            )
        if report is not None and actor.role is Role.OUTLET:
            report = self._family_view(report)
        return report, share

    async def read_shared(self, share_code: str, pin: str) -> Report:
        """The family's copy by share code and PIN (wrong PINs lock the code), audited."""
        outcome, consultation_id = await self._records.shares.check_pin(
            share_code, pin, self._now()
        )
        family = FamilyReader(share_code)
        if consultation_id is None:
            raise NotFound("no such report")
        if outcome is PinCheck.EXPIRED:
            raise Expired("this report link has expired: ask the outlet for a printout")
        if outcome is not PinCheck.OPEN:
            await self._records.audit.append_patient_event(
                AuditEvent(
                    consultation_id,
                    self._clock(),
                    family.subject,
                    Role.GUEST.value,
                    AuditAction.REPORT_SHARE_REFUSED.value,
                    {"outcome": outcome.value},
                )
            )
            if outcome is PinCheck.LOCKED:
                raise ShareLocked()
            raise Forbidden("wrong PIN")
        report = await self._records.reports.latest(consultation_id)
        if report is None or not report.final:
            raise NotFound("no such report")
        await self._consultation_audit.append(
            AuditEvent(
                consultation_id,
                self._clock(),
                family.subject,
                Role.GUEST.value,
                AuditAction.REPORT_SHARE_READ.value,
                {"version": report.version},
                report.patient_id,
            )
        )
        return self._family_view(report)

    # ----- helpers -----------------------------------------------------------------------------

    async def _recorded(self, actor: Actor, consultation_id: str) -> Consultation:
        """The live consultation, or (once the live store has forgotten it: the in-memory store
        after a restart or its retention) the ended one its visit record describes."""
        try:
            return await self._consultations.get(actor, consultation_id)
        except NotFound:
            visit = await self._records.visits.get(consultation_id)
            if visit is None:
                raise
            return ended_consultation_of(visit)

    def _family_view(self, report: Report) -> Report:
        """What the family sees: for opt-in services (counselling) nothing written unless the
        clinician ticked "share with family"."""
        if (
            report.shared_with_family
            or not self._templates.for_service(report.service).family_opt_in
        ):
            return report
        return replace(report, findings={}, summary="", advice="", referral=None, attachments=())

    def _history_view(self, report: Report | None) -> dict[str, Any] | None:
        return None if report is None else self._family_view(report).to_wire()

    async def _checked(self, consultation: Consultation, content: ReportContent) -> ReportContent:
        """Findings that fit the service's template; attachments that are this consultation's
        photos."""
        template = self._templates.for_service(consultation.service)
        findings = template.check(content.findings)
        if content.attachments:
            photos = await self._records.photos.of_consultations([consultation.id])
            if not set(content.attachments) <= {p.photo_id for p in photos[consultation.id]}:
                raise BadAttachment()
        return replace(content, findings=findings)

    async def _clinicians_consultation(self, actor: Actor, consultation_id: str) -> Consultation:
        consultation = await self._consultations.get(actor, consultation_id)
        access.require(actor, Access.REPORT_WRITE, consultation)
        return consultation

    async def _writable(self, actor: Actor, consultation_id: str) -> Consultation:
        consultation = await self._clinicians_consultation(actor, consultation_id)
        if consultation.state is ConsultationState.ACTIVE:
            return consultation
        if consultation.state is ConsultationState.ENDED and consultation.ended_at is not None:
            if self._clock() - consultation.ended_at <= self._config.report_edit_s:
                return consultation
            raise ReportClosed()
        raise InvalidState("the report is written once the consultation has started")

    async def require_history(self, actor: Actor, patient_id: str) -> None:
        """Refused (:class:`Forbidden`) unless ``actor`` may read the patient's history."""
        if actor.role is Role.ADMIN:
            return
        open_ = [c for c in await self._store.open_consultations() if c.patient_id == patient_id]
        if access.may_read_history(actor, patient_id, open_):
            return
        # The clinician of a consultation that ended recently may still be writing its report.
        recent = await self._records.visits.of_patient(patient_id, HISTORY_VISITS)
        window = timedelta(seconds=self._config.report_edit_s)
        now = self._now()
        if actor.role.is_clinician and any(
            v.clinician_id == actor.subject
            and v.ended_at is not None
            and now - v.ended_at <= window
            for v in recent
        ):
            return
        access.require_history(actor, patient_id, open_)

    async def _announce(self, consultation: Consultation, report: Report, share: Share) -> None:
        payload = {
            "consultation_id": consultation.id,
            "report": self._family_view(report).to_wire(),
            **share.to_wire(),
        }
        await self._notifier.to_subject(consultation.outlet_id, "report.finalised", payload)

    async def _audit(
        self,
        actor: Actor,
        consultation: Consultation,
        action: AuditAction,
        details: dict[str, Any],
    ) -> None:
        await self._consultation_audit.write(actor, consultation, action, details)

    async def _patient_audit(self, actor: Actor, patient_id: str, action: AuditAction) -> None:
        await self._records.audit.append_patient_event(
            self._patient_event(actor, patient_id, action)
        )

    def _patient_event(self, actor: Actor, patient_id: str, action: AuditAction) -> AuditEvent:
        """An audit entry about a patient alone (no consultation)."""
        return AuditEvent(
            "", self._clock(), actor.subject, actor.role.value, action.value, {}, patient_id
        )

    def _now(self) -> datetime:
        return utc(self._clock())


@dataclass(frozen=True)
class FamilyReader:
    """Whoever holds a share code and its PIN (the audit names the code, never the PIN)."""

    share_code: str
    name: str = "family"
    consultation_id: str | None = None
    services: frozenset[str] = frozenset()

    @property
    def subject(self) -> str:
        return f"share:{self.share_code}"

    @property
    def role(self) -> Role:
        return Role.GUEST


def _author(actor: Actor, consultation: Consultation) -> ReportAuthor:
    return ReportAuthor(
        consultation.id, consultation.patient_id, consultation.service, actor.subject, actor.name
    )
