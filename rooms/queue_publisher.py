"""Pushing queue changes: bounded summaries to clinicians and admins, positions to kiosks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rooms.announcer import Announcer
from rooms.queue import queue_summary, summary_signature
from rooms.queue_view import QueueView
from rooms.store import Store


class QueuePublisher:
    """Sends ``queue.changed`` and ``queue.position`` only when what a client sees changed."""

    def __init__(
        self,
        store: Store,
        queues: QueueView,
        announcer: Announcer,
        push_entries: int,
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._queues = queues
        self._announcer = announcer
        self._push_entries = push_entries
        self._clock = clock
        self._published_queues: dict[str, tuple[Any, ...]] = {}
        self._published_positions: dict[str, tuple[int, str, int | None]] = {}

    async def publish(self) -> None:
        """Push each service's summary and each connected kiosk's position if they changed."""
        now = self._clock()
        open_ = await self._store.open_consultations()
        presences = await self._store.all_presence()
        services = {c.service for c in open_ if c.state.queued} | set(self._published_queues)
        kiosk_online = {
            c.id
            for c in open_
            if (outlet := c.participants.get(c.outlet_id)) is not None and outlet.connected
        }
        seen: set[str] = set()
        first = self._push_entries
        for service in sorted(services):
            entries = await self._queues.entries(service, open_, presences, now)
            signature = summary_signature(entries, first)
            if self._published_queues.get(service) != signature:
                payload = queue_summary(service, entries, first)
                await self._announcer.to_service(service, "queue.changed", payload)
                await self._announcer.to_admins("queue.changed", payload)
            if entries:
                self._published_queues[service] = signature
            else:
                self._published_queues.pop(service, None)
            for entry in entries:
                if entry.consultation_id not in kiosk_online:
                    continue  # told on reconnect; a dropped kiosk is not sent positions
                seen.add(entry.consultation_id)
                minutes = (
                    None if entry.estimated_wait_s is None else int(entry.estimated_wait_s // 60)
                )
                key = (entry.position, entry.state.value, minutes)
                if self._published_positions.get(entry.consultation_id) != key:
                    self._published_positions[entry.consultation_id] = key
                    await self._announcer.to_subject(
                        entry.outlet_id, "queue.position", entry.to_wire()
                    )
        for gone in set(self._published_positions) - seen:
            del self._published_positions[gone]
