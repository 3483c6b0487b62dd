"""Keeps the records in step with the live consultations: the ``visits`` table at each
milestone, and consent evidence as the guardian gives or withdraws recording consent."""

from __future__ import annotations

from collections.abc import Callable

from records.columns import utc
from records.consents import ConsentEvidence, ConsentKind, ConsentRecords
from records.models import Visit
from records.visits import VisitRecords
from rooms.models import Consultation, ConsultationState
from rooms.notify import Actor


class RecordKeeper:
    """Implements :class:`rooms.notify.RecordsListener`."""

    def __init__(
        self, visits: VisitRecords, consents: ConsentRecords, clock: Callable[[], float]
    ) -> None:
        self._visits = visits
        self._consents = consents
        self._clock = clock

    async def on_visit_changed(self, consultation: Consultation) -> None:
        """Each milestone rewrites the visit."""
        await self._visits.keep(visit_of(consultation))

    async def on_consent_changed(self, consultation: Consultation, actor: Actor) -> None:
        consent = consultation.consent
        if consent is None:
            await self._consents.withdrawn(consultation.id, actor.subject, utc(self._clock()))
            return
        await self._consents.given(
            ConsentEvidence(
                ConsentKind.RECORDING,
                consultation.id,
                consultation.patient_id,
                consent.purpose,
                consent.given_by,
                actor.role.value,
                consent.outlet_id,
                utc(consent.given_at),
            )
        )


def visit_of(c: Consultation) -> Visit:
    """The visit a consultation is, as the records keep it."""
    clinician = c.participants.get(c.clinician_id) if c.clinician_id else None
    return Visit(
        consultation_id=c.id,
        patient_id=c.patient_id,
        service=c.service,
        outlet_id=c.outlet_id,
        checked_in_at=utc(c.created_at),
        started_at=utc(c.started_at) if c.started_at is not None else None,
        ended_at=utc(c.ended_at) if c.ended_at is not None else None,
        clinician_id=c.clinician_id,
        clinician_name=clinician.name if clinician else None,
        outcome=c.ended_reason,
    )


def ended_consultation_of(visit: Visit) -> Consultation:
    """The consultation a visit record describes, as ended: what the access policy needs (its
    outlet, service, clinician, patient) once the live store no longer holds it."""
    checked_in = visit.checked_in_at.timestamp()
    return Consultation(
        id=visit.consultation_id,
        service=visit.service,
        outlet_id=visit.outlet_id,
        patient_ref="",
        guardian_present=True,
        urgent=False,
        appointment_at=None,
        created_at=checked_in,
        queued_at=checked_in,
        state=ConsultationState.ENDED,
        clinician_id=visit.clinician_id,
        started_at=visit.started_at.timestamp() if visit.started_at else None,
        ended_at=visit.ended_at.timestamp() if visit.ended_at else checked_in,
        ended_reason=visit.outcome,
        patient_id=visit.patient_id,
    )
