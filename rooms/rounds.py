"""The background round: heartbeats, deadlines (offer timeout, rejoin grace, empty room), queues.

Timers are deadlines stored on the consultation and enforced by one background round per
process; the store's atomic writes make a deadline that two processes see at once fire only once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from rooms.errors import StoreUnavailable
from rooms.models import AuditEvent, Consultation
from rooms.presence import PresenceMixin
from rooms.queue import queue_summary, summary_signature
from rooms.rules import ACTIVE, ENDED, OFFERED, finish, mark_if_empty

logger = logging.getLogger(__name__)

_ROUND_LOCK = "rounds"
# While the store is unreachable rounds back off, doubling the pause up to this.
_MAX_OUTAGE_PAUSE_S = 5.0


class RoundsMixin(PresenceMixin):
    """Runs the periodic round and the deadline steps it enforces."""

    async def start(self) -> None:
        """Start the background round (deadlines, pairing, queue updates)."""
        if self._task is None:
            self._task = asyncio.create_task(
                self._run_rounds(), name=f"consultation-rounds-{self._node[:8]}"
            )

    async def close(self) -> None:
        """Stop the round and record still-open local connections as dropped (idempotent)."""
        if self._closed:
            return
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for subject, sids in list(self._connections.items()):
            actor = self._actors.get(subject)
            for sid in list(sids):
                if actor is not None:
                    await self.disconnected(actor, sid)
        self._closed = True

    async def _run_rounds(self) -> None:
        """Run rounds until closed; while the store is unreachable, retry with capped backoff."""
        pause = self._config.round_interval_s
        outage_since: float | None = None
        # Checked as well as cancellation: a library call may swallow a CancelledError.
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)
            self._wake.clear()
            try:
                await self.run_round()
            except StoreUnavailable:
                if outage_since is None:
                    outage_since = self._clock()
                    logger.warning("store unreachable: rounds paused node=%s", self._node[:8])
                pause = min(_MAX_OUTAGE_PAUSE_S, pause * 2)
                continue
            except Exception:
                logger.exception("consultation round failed node=%s", self._node[:8])
            if outage_since is not None:
                logger.warning(
                    "store reachable again after %.1f s: rounds resumed node=%s",
                    self._clock() - outage_since,
                    self._node[:8],
                )
                outage_since = None
            pause = self._config.round_interval_s

    async def run_round(self) -> None:
        """Enforce deadlines, pair waiting consultations with free clinicians, publish queues.

        Only one process runs a round at a time (a store lock); the others skip it.
        """
        await self._heartbeat()
        if not await self._store.try_lock(_ROUND_LOCK, self._node, 10.0):
            return
        try:
            await self._enforce_deadlines()
            await self._pair()
            await self._publish_queues()
        finally:
            await self._store.release_lock(_ROUND_LOCK, self._node)

    async def _heartbeat(self) -> None:
        """Tell the store this process's connections are alive, so others can spot a crash."""
        now = self._clock()
        if now - self._heartbeat_at < self._config.presence_timeout_s / 3:
            return
        await self._store.mark_seen(list(self._actors), now)
        for subject, actor in list(self._actors.items()):
            if actor.role.is_clinician:
                await self._refresh_presence(subject, True, now)
        # Only once written: after a store outage the next round beats before checking silence.
        self._heartbeat_at = now

    async def _enforce_deadlines(self) -> None:
        now = self._clock()
        config = self._config
        live = await self._live_clinicians(now)
        open_ = await self._store.open_consultations()
        await self._drop_silent_participants(open_, now)
        for c in open_:
            if c.state is OFFERED and c.offer_expires_at is not None and c.offer_expires_at <= now:
                await self._offer_timed_out(c)
            elif c.state is OFFERED and c.offered_to not in live:
                await self._withdraw_offer(c, "clinician_offline")
            for participant in list(c.participants.values()):
                lost_at = participant.disconnected_at
                if lost_at is not None and lost_at + config.rejoin_grace_s <= now:
                    await self._grace_expired(c.id, participant.participant_id)
            if (
                c.state is ACTIVE
                and c.empty_since is not None
                and c.empty_since + config.empty_room_grace_s <= now
            ):
                await self._end_if_still_empty(c.id)

    async def _publish_queues(self) -> None:
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
        for service in sorted(services):
            entries = await self._entries(service, open_, presences, now)
            first = self._config.queue_push_entries
            signature = summary_signature(entries, first)
            if self._published_queues.get(service) != signature:
                payload = queue_summary(service, entries, first)
                await self._notifier.to_service(service, "queue.changed", payload)
                await self._notifier.to_admins("queue.changed", payload)
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
                    await self._notifier.to_subject(
                        entry.outlet_id, "queue.position", entry.to_wire()
                    )
        for gone in set(self._published_positions) - seen:
            del self._published_positions[gone]

    async def _drop_silent_participants(self, open_: list[Consultation], now: float) -> None:
        """Participants marked connected whose process stopped its heartbeat (it crashed)."""
        connected = {
            p.participant_id for c in open_ for p in c.participants.values() if p.connected
        }
        seen = await self._store.seen_at(connected)
        cutoff = now - self._config.presence_timeout_s
        for c in open_:
            for p in c.participants.values():
                last_seen = seen.get(p.participant_id, now)
                if p.connected and last_seen < cutoff:
                    await self._mark_disconnected(c.id, p.participant_id, last_seen, "silent")

    async def _grace_expired(self, consultation_id: str, participant_id: str) -> None:
        now = self._clock()
        grace = self._config.rejoin_grace_s

        def change(c: Consultation) -> bool:
            participant = c.participants.get(participant_id)
            if (
                participant is None
                or participant.disconnected_at is None
                or participant.disconnected_at + grace > now
            ):
                return False
            if participant_id == c.outlet_id and c.state.queued:
                finish(c, now, "outlet_disconnected")
                return True
            del c.participants[participant_id]
            if c.state is ACTIVE:
                mark_if_empty(c, now)
            return True

        before, after = await self._update(consultation_id, change)
        if after.version == before.version:
            return
        role = before.participants[participant_id].role.value
        await self._append_audit(
            AuditEvent(
                after.id, now, participant_id, role, "leave", {"reason": "rejoin_grace_expired"}
            )
        )
        logger.info("grace expired consultation=%s participant=%s", after.id, participant_id)
        if after.state is ENDED:
            await self._after_end(None, before, after)
            return
        await self._tell_left(after.id, participant_id)
        await self._notify_consultation(after, "consultation.updated")

    async def _end_if_still_empty(self, consultation_id: str) -> None:
        now = self._clock()
        grace = self._config.empty_room_grace_s

        def change(c: Consultation) -> bool:
            if c.state is not ACTIVE or c.empty_since is None or c.empty_since + grace > now:
                return False
            finish(c, now, "empty")
            return True

        before, after = await self._update(consultation_id, change)
        if after.version != before.version:
            await self._after_end(None, before, after)
