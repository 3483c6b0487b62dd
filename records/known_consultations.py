"""A consultation as the access policy needs it, from the live store or, once the store has
let it go (ended and purged, or the server restarted on the memory store), from its visit."""

from __future__ import annotations

from records.keeper import ended_consultation_of
from records.visits import VisitRecords
from rooms.errors import NotFound
from rooms.models import Consultation
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
        return ended_consultation_of(visit)
