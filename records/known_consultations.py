"""A consultation as the access policy needs it, from the live store or, once the store has
let it go (ended and purged, or the server restarted on the memory store), from its visit."""

from __future__ import annotations

from records.visits import VisitRecords
from rooms.errors import NotFound
from rooms.models import Consultation, ConsultationState
from rooms.store import Store


class KnownConsultations:
    """Live consultations first, kept visits after."""

    def __init__(self, store: Store, visits: VisitRecords) -> None:
        self._store = store
        self._visits = visits

    async def get(self, consultation_id: str) -> Consultation:
        live = await self._store.get_consultation(consultation_id)
        if live is not None:
            return live
        visit = await self._visits.get(consultation_id)
        if visit is None:
            raise NotFound("no such consultation")
        checked_in = visit.checked_in_at.timestamp()
        # Only what the access policy reads: ended, its outlet, its clinician, its patient.
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
            ended_at=visit.ended_at.timestamp() if visit.ended_at else checked_in,
            patient_id=visit.patient_id,
        )
