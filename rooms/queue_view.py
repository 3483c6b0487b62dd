"""The queues as clients see them: entries with positions and wait estimates, from the store."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rooms.config import ServiceConfig
from rooms.models import (
    ClinicianPresence,
    Consultation,
    ConsultationState,
    PresenceStatus,
    QueueEntry,
)
from rooms.notify import Actor
from rooms.queue import order_queue, queue_entries
from rooms.rules import visible_services
from rooms.store import Store


def engaged(open_: Iterable[Consultation]) -> set[str | None]:
    """Clinicians holding an offer or treating a consultation: not free for another offer."""
    return {
        c.offered_to if c.state is ConsultationState.OFFERED else c.clinician_id
        for c in open_
        if c.state in (ConsultationState.OFFERED, ConsultationState.ACTIVE)
    }


class QueueView:
    """Reads the queues: who is live, each service's ordered entries, one request's place."""

    def __init__(self, store: Store, config: ServiceConfig, clock: Callable[[], float]) -> None:
        self._store = store
        self._config = config
        self._clock = clock

    async def live_clinicians(self, now: float) -> dict[str, ClinicianPresence]:
        """Clinicians whose presence was refreshed within ``presence_timeout_s``."""
        timeout = self._config.presence_timeout_s
        return {
            p.clinician_id: p for p in await self._store.all_presence() if p.is_live(now, timeout)
        }

    async def entries(
        self,
        service: str,
        open_: list[Consultation],
        presences: list[ClinicianPresence],
        now: float,
    ) -> list[QueueEntry]:
        """The service's queue in order, with the estimate based on who covers it now."""
        timeout = self._config.presence_timeout_s
        busy = engaged(open_)
        covering = [
            p
            for p in presences
            if p.is_live(now, timeout)
            and service in p.services
            and p.status is not PresenceStatus.AWAY
        ]
        free = [
            p
            for p in covering
            if p.status is PresenceStatus.AVAILABLE and p.clinician_id not in busy
        ]
        ordered = order_queue((c for c in open_ if c.service == service), now, self._config.policy)
        return queue_entries(
            ordered, now, await self._store.recent_durations(service), len(free), len(covering)
        )

    async def entry_for(self, consultation: Consultation) -> QueueEntry | None:
        """Its queue entry, or ``None`` if it left the queue meanwhile (taken, ended)."""
        open_ = await self._store.open_consultations()
        entries = await self.entries(
            consultation.service, open_, await self._store.all_presence(), self._clock()
        )
        return next((e for e in entries if e.consultation_id == consultation.id), None)

    async def all_entries(self, services: set[str] | None = None) -> dict[str, list[QueueEntry]]:
        """Every non-empty queue (or those of ``services``), by service name in order."""
        open_ = await self._store.open_consultations()
        presences = await self._store.all_presence()
        now = self._clock()
        queued = {c.service for c in open_ if c.state.queued}
        names = sorted(queued if services is None else queued & services)
        return {name: await self.entries(name, open_, presences, now) for name in names}

    async def queue_list(self, actor: Actor, service: str | None = None) -> list[QueueEntry]:
        """Waiting consultations a clinician (for covered services) or admin may see."""
        queues = await self.all_entries(visible_services(actor, service))
        return [entry for entries in queues.values() for entry in entries]
