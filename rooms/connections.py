"""This process's client connections: resume on connect, drops, heartbeats and crashed peers.

Each process keeps the connections it holds; it heartbeats their subjects into the store, so
the process running the round sees participants of a crashed process fall silent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from rooms.announcer import Announcer
from rooms.attendance import Attendance
from rooms.config import ServiceConfig
from rooms.errors import StoreUnavailable
from rooms.models import Consultation, QueueEntry
from rooms.notify import Actor
from rooms.pairing import Pairing
from rooms.presence import Presence
from rooms.queue_view import QueueView
from rooms.roles import Role
from rooms.rules import concerns
from rooms.store import Store
from rooms.transitions import OFFERED

logger = logging.getLogger(__name__)


class Connections:
    """Local connections by subject; what happens when one comes up or goes away."""

    def __init__(
        self,
        store: Store,
        presence: Presence,
        pairing: Pairing,
        attendance: Attendance,
        queues: QueueView,
        announcer: Announcer,
        config: ServiceConfig,
        clock: Callable[[], float],
        wake: Callable[[], None],
    ) -> None:
        self._store = store
        self._presence = presence
        self._pairing = pairing
        self._attendance = attendance
        self._queues = queues
        self._announcer = announcer
        self._config = config
        self._clock = clock
        self._wake = wake
        self._sids: dict[str, set[str]] = {}
        self._actors: dict[str, Actor] = {}
        self._heartbeat_at = 0.0
        self._silence_judged_from = float("-inf")
        self._closed = False

    async def connected(self, actor: Actor, sid: str) -> list[Consultation]:
        """A connection came up; returns the consultations this subject can resume."""
        if self._closed:
            return []
        self._sids.setdefault(actor.subject, set()).add(sid)
        self._actors[actor.subject] = actor
        now = self._clock()
        try:
            if actor.role.is_clinician:
                await self._presence.connect(actor, now)
            await self._store.mark_seen([actor.subject], now)
            open_ = await self._store.open_consultations()
            resumable = [c for c in open_ if concerns(actor, c)]
            if actor.role is Role.OUTLET:
                resumable = await self._resume_outlet(actor, resumable, open_)
        except StoreUnavailable:
            self._forget(actor.subject, sid)  # the connection is refused
            raise
        self._wake()
        return resumable

    async def disconnected(self, actor: Actor, sid: str) -> None:
        """A connection went away: presence goes offline, the rejoin grace period starts."""
        if self._closed:
            return
        if not self._forget(actor.subject, sid):
            return
        now = self._clock()
        if actor.role.is_clinician:
            await self._presence.refresh(actor.subject, False, now)
        for consultation in await self._store.open_consultations():
            if consultation.state is OFFERED and consultation.offered_to == actor.subject:
                await self._pairing.withdraw_offer(consultation, "disconnected")
            participant = consultation.participants.get(actor.subject)
            if participant is not None and participant.connected:
                await self._attendance.mark_disconnected(
                    consultation.id, actor.subject, now, "disconnected"
                )
        self._wake()

    async def close(self) -> None:
        """Record every connection still open here as dropped; later ones are ignored."""
        if self._closed:
            return
        for subject, sids in list(self._sids.items()):
            actor = self._actors.get(subject)
            for sid in list(sids):
                if actor is not None:
                    await self.disconnected(actor, sid)
        self._closed = True

    def _forget(self, subject: str, sid: str) -> bool:
        """Drop a local connection; ``True`` if it was the subject's last one."""
        sids = self._sids.get(subject, set())
        sids.discard(sid)
        if sids:
            return False
        self._sids.pop(subject, None)
        self._actors.pop(subject, None)
        return True

    async def _resume_outlet(
        self, actor: Actor, own: list[Consultation], open_: list[Consultation]
    ) -> list[Consultation]:
        """Reconnect an outlet's queued consultations and tell it their queue positions.

        At most ``max_open_per_outlet`` are resumed (oldest first): the work on reconnect is
        bounded however many an older server let it open; the others end after the rejoin grace.
        """
        queued = sorted((c for c in own if c.state.queued), key=lambda c: c.created_at)
        resumed = queued[: self._config.max_open_per_outlet]
        others = [c for c in own if not c.state.queued]
        if len(queued) > len(resumed):
            logger.warning(
                "outlet reconnect resumes %d of %d queued consultations outlet=%s",
                len(resumed),
                len(queued),
                actor.subject,
            )
        reconnected = [await self._attendance.reconnect_waiting(actor, c) for c in resumed]
        presences = await self._store.all_presence()
        now = self._clock()
        positions: dict[str, QueueEntry] = {}
        fresh = {c.id: c for c in reconnected}
        current = [fresh.get(c.id, c) for c in open_]
        for service in sorted({c.service for c in reconnected}):
            for entry in await self._queues.entries(service, current, presences, now):
                positions[entry.consultation_id] = entry
        for consultation in reconnected:
            if consultation.id in positions:
                await self._announcer.to_subject(
                    actor.subject, "queue.position", positions[consultation.id].to_wire()
                )
        return others + reconnected

    async def heartbeat(self, force: bool = False) -> None:
        """Tell the store this process's connections are alive, so others can spot a crash.

        Runs at most every third of ``presence_timeout_s`` unless ``force``.
        """
        now = self._clock()
        if not force and now - self._heartbeat_at < self._config.presence_timeout_s / 3:
            return
        await self._store.mark_seen(list(self._actors), now)
        for subject, actor in list(self._actors.items()):
            if actor.role.is_clinician:
                await self._presence.refresh(subject, True, now)
        # Only once written: after a store outage the next round beats before checking silence.
        self._heartbeat_at = now

    def store_unreachable(self) -> None:
        """The store is down: no process can heartbeat, so nobody is judged silent until it is
        back (see :meth:`store_recovered`)."""
        self._silence_judged_from = float("inf")

    def store_recovered(self, now: float) -> None:
        """The store is back: silence is judged again once every live process has had
        ``presence_timeout_s`` to heartbeat (otherwise a short outage would end every room)."""
        self._silence_judged_from = now + self._config.presence_timeout_s

    async def drop_silent(self, open_: list[Consultation], now: float) -> None:
        """Deadline step: participants marked connected whose process stopped its heartbeat."""
        if now < self._silence_judged_from:
            return
        connected = {
            p.participant_id for c in open_ for p in c.participants.values() if p.connected
        }
        seen = await self._store.seen_at(connected)
        cutoff = now - self._config.presence_timeout_s
        for c in open_:
            for p in c.participants.values():
                last_seen = seen.get(p.participant_id, now)
                if p.connected and last_seen < cutoff:
                    await self._attendance.mark_disconnected(
                        c.id, p.participant_id, last_seen, "silent"
                    )
