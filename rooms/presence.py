"""Clinician presence, local connections, queue views, pairing and offers."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import replace

from rooms.errors import Conflict, Forbidden, StoreUnavailable
from rooms.models import AuditEvent, ClinicianPresence, Consultation, PresenceStatus, QueueEntry
from rooms.notify import Actor
from rooms.queue import order_queue
from rooms.roles import Role
from rooms.rules import (
    ACTIVE,
    OFFERED,
    WAITING,
    concerns,
    mark_if_empty,
    requeue,
    require_clinician,
)
from rooms.service_base import CAS_ATTEMPTS, ServiceBase

logger = logging.getLogger(__name__)


class PresenceMixin(ServiceBase):
    """Who is online and available, and offering waiting consultations to free clinicians."""

    async def set_presence(
        self, actor: Actor, status: PresenceStatus, services: Iterable[str] | None = None
    ) -> ClinicianPresence:
        """Set a clinician's status and the services it takes now (a subset of its token's)."""
        require_clinician(actor)
        chosen = tuple(sorted(set(services) if services is not None else actor.services))
        if not set(chosen) <= actor.services:
            raise Forbidden("you may only cover services your token grants")
        now = self._clock()

        def change(previous: ClinicianPresence | None) -> ClinicianPresence:
            keeps_availability = (
                previous is not None
                and previous.status is status
                and previous.is_live(now, self._config.presence_timeout_s)
            )
            return ClinicianPresence(
                clinician_id=actor.subject,
                role=actor.role,
                name=actor.name,
                status=status,
                services=chosen,
                online=True,
                seen_at=now,
                available_since=(
                    previous.available_since if previous and keeps_availability else now
                ),
            )

        presence = await self._update_presence(actor.subject, change)
        assert presence is not None
        logger.info(
            "presence clinician=%s status=%s services=%s",
            actor.subject,
            status.value,
            ",".join(chosen),
        )
        if status is not PresenceStatus.AVAILABLE:
            await self._withdraw_offers_to(actor.subject, "clinician_" + status.value)
        self.wake()
        return presence

    async def _update_presence(
        self,
        clinician_id: str,
        change: Callable[[ClinicianPresence | None], ClinicianPresence | None],
    ) -> ClinicianPresence | None:
        """Compare-and-set a clinician's presence, retrying on a concurrent write.

        ``change`` gets the freshly read presence (or ``None``) and returns the one to write, or
        ``None`` for "nothing to do" (then the presence read is returned).
        """
        for _ in range(CAS_ATTEMPTS):
            current = await self._store.get_presence(clinician_id)
            wanted = change(current)
            if wanted is None:
                return current
            written = await self._store.put_presence(wanted, current.version if current else 0)
            if written is not None:
                return written
        raise Conflict("presence changed concurrently too often; try again")

    async def _refresh_presence(self, clinician_id: str, online: bool, now: float) -> None:
        """Mark a clinician (dis)connected without touching the status it chose."""

        def change(current: ClinicianPresence | None) -> ClinicianPresence | None:
            return None if current is None else replace(current, online=online, seen_at=now)

        await self._update_presence(clinician_id, change)

    async def _withdraw_offers_to(self, clinician_id: str, reason: str) -> None:
        for consultation in await self._store.open_consultations():
            if consultation.state is OFFERED and consultation.offered_to == clinician_id:
                await self._withdraw_offer(consultation, reason)

    async def queue_list(self, actor: Actor, service: str | None = None) -> list[QueueEntry]:
        """Waiting consultations a clinician (for covered services) or admin may see."""
        if actor.role is Role.ADMIN:
            wanted = None if service is None else {service}
        else:
            require_clinician(actor)
            if service is not None and service not in actor.services:
                raise Forbidden("you do not cover that service")
            wanted = {service} if service is not None else set(actor.services)
        open_ = await self._store.open_consultations()
        services = {c.service for c in open_ if c.state.queued}
        entries: list[QueueEntry] = []
        presences = await self._store.all_presence()
        for name in sorted(services if wanted is None else services & wanted):
            entries.extend(await self._entries(name, open_, presences, self._clock()))
        return entries

    async def connected(self, actor: Actor, sid: str) -> list[Consultation]:
        """A connection came up; returns the consultations this subject can resume."""
        if self._closed:
            return []
        self._connections.setdefault(actor.subject, set()).add(sid)
        self._actors[actor.subject] = actor
        now = self._clock()
        try:
            if actor.role.is_clinician:
                await self._connect_presence(actor, now)
            await self._store.mark_seen([actor.subject], now)
            open_ = await self._store.open_consultations()
            resumable = [c for c in open_ if concerns(actor, c)]
            if actor.role is Role.OUTLET:
                resumable = await self._resume_outlet(actor, resumable, open_)
        except StoreUnavailable:
            self._forget_connection(actor.subject, sid)  # the connection is refused
            raise
        self.wake()
        return resumable

    def _forget_connection(self, subject: str, sid: str) -> bool:
        """Drop a local connection; ``True`` if it was the subject's last one."""
        sids = self._connections.get(subject, set())
        sids.discard(sid)
        if sids:
            return False
        self._connections.pop(subject, None)
        self._actors.pop(subject, None)
        return True

    async def _connect_presence(self, actor: Actor, now: float) -> None:
        def change(previous: ClinicianPresence | None) -> ClinicianPresence:
            presence = previous or ClinicianPresence(
                actor.subject,
                actor.role,
                actor.name,
                PresenceStatus.AWAY,
                tuple(sorted(actor.services)),
                True,
                now,
                now,
            )
            return replace(presence, online=True, seen_at=now)

        await self._update_presence(actor.subject, change)

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
        reconnected = [await self._reconnect_waiting(actor, c) for c in resumed]
        presences = await self._store.all_presence()
        now = self._clock()
        positions: dict[str, QueueEntry] = {}
        fresh = {c.id: c for c in reconnected}
        current = [fresh.get(c.id, c) for c in open_]
        for service in sorted({c.service for c in reconnected}):
            for entry in await self._entries(service, current, presences, now):
                positions[entry.consultation_id] = entry
        for consultation in reconnected:
            if consultation.id in positions:
                await self._notifier.to_subject(
                    actor.subject, "queue.position", positions[consultation.id].to_wire()
                )
        return others + reconnected

    async def disconnected(self, actor: Actor, sid: str) -> None:
        """A connection went away: presence goes offline, the rejoin grace period starts."""
        if self._closed:
            return
        if not self._forget_connection(actor.subject, sid):
            return
        now = self._clock()
        if actor.role.is_clinician:
            await self._refresh_presence(actor.subject, False, now)
        for consultation in await self._store.open_consultations():
            if consultation.state is OFFERED and consultation.offered_to == actor.subject:
                await self._withdraw_offer(consultation, "disconnected")
            participant = consultation.participants.get(actor.subject)
            if participant is not None and participant.connected:
                await self._mark_disconnected(consultation.id, actor.subject, now, "disconnected")
        self.wake()

    async def _reconnect_waiting(self, actor: Actor, consultation: Consultation) -> Consultation:
        def change(c: Consultation) -> bool:
            participant = c.participants.get(actor.subject)
            if participant is None or participant.connected:
                return False
            participant.connected = True
            participant.disconnected_at = None
            return True

        before, after = await self._update(consultation.id, change)
        if after.version != before.version:
            await self.audit(after.id, actor, "rejoin", {"state": after.state.value})
            logger.info("outlet back consultation=%s participant=%s", after.id, actor.subject)
        return after

    async def _mark_disconnected(
        self, consultation_id: str, participant_id: str, now: float, reason: str
    ) -> None:
        def change(c: Consultation) -> bool:
            participant = c.participants.get(participant_id)
            if participant is None or not participant.connected:
                return False
            participant.connected = False
            participant.disconnected_at = now
            if c.state is ACTIVE:
                mark_if_empty(c, now)
            return True

        before, after = await self._update(consultation_id, change)
        if after.version == before.version:
            return
        role = after.participants[participant_id].role.value
        await self._append_audit(
            AuditEvent(after.id, now, participant_id, role, "disconnected", {"reason": reason})
        )
        logger.info(
            "dropped consultation=%s participant=%s reason=%s grace_s=%s",
            after.id,
            participant_id,
            reason,
            self._config.rejoin_grace_s,
        )
        await self._notify_consultation(after, "consultation.updated")

    async def _pair(self) -> None:
        now = self._clock()
        open_ = await self._store.open_consultations()
        engaged = {c.offered_to for c in open_ if c.state is OFFERED} | {
            c.clinician_id for c in open_ if c.state is ACTIVE
        }
        free = sorted(
            (
                p
                for p in (await self._live_clinicians(now)).values()
                if p.status is PresenceStatus.AVAILABLE and p.clinician_id not in engaged
            ),
            key=lambda p: p.available_since,
        )
        for c in order_queue(open_, now, self._config.policy):
            if not free:
                return
            outlet = c.participants.get(c.outlet_id)
            if c.state is not WAITING or outlet is None or not outlet.connected:
                continue
            chosen = next(
                (
                    p
                    for p in free
                    if c.service in p.services and p.clinician_id not in c.declined_by
                ),
                None,
            )
            if chosen is not None and await self._offer(c, chosen.clinician_id):
                free.remove(chosen)

    async def _offer(self, consultation: Consultation, clinician_id: str) -> bool:
        expires_at = self._clock() + self._config.offer_timeout_s

        def change(c: Consultation) -> bool:
            if c.state is not WAITING:
                return False
            c.state = OFFERED
            c.offered_to = clinician_id
            c.offer_expires_at = expires_at
            return True

        try:
            before, after = await self._update(consultation.id, change)
        except Conflict:
            return False
        if after.version == before.version:
            return False
        await self._append_audit(
            AuditEvent(
                after.id, self._clock(), "system", "system", "offer", {"clinician_id": clinician_id}
            )
        )
        presence = await self._store.get_presence(clinician_id)
        if presence is None or presence.status is not PresenceStatus.AVAILABLE:
            # The clinician chose another status while the offer was being written; its
            # set_presence withdraws offers it sees, this catches the one it could not see yet.
            await self._withdraw_offer(after, "clinician_unavailable")
            return False
        logger.info("offered consultation=%s clinician=%s", after.id, clinician_id)
        await self._announce_offer(after)
        await self._notify_consultation(after, "consultation.updated")
        return True

    async def _announce_offer(self, consultation: Consultation) -> None:
        assert consultation.offered_to and consultation.offer_expires_at
        await self._notifier.to_subject(
            consultation.offered_to,
            "consultation.offered",
            {
                "consultation": consultation.to_wire(),
                "expires_in_s": round(consultation.offer_expires_at - self._clock(), 1),
            },
        )

    async def _offer_timed_out(self, consultation: Consultation) -> None:
        clinician_id = consultation.offered_to
        if not await self._withdraw_offer(consultation, "timeout") or clinician_id is None:
            return

        def change(current: ClinicianPresence | None) -> ClinicianPresence | None:
            # Someone who lets an offer lapse is probably not at the desk: stop offering to them.
            # Compare-and-set: a status the clinician chose meanwhile is kept.
            if current is None or current.status is not PresenceStatus.AVAILABLE:
                return None
            return replace(current, status=PresenceStatus.AWAY)

        presence = await self._update_presence(clinician_id, change)
        if presence is not None and presence.status is PresenceStatus.AWAY:
            logger.info("presence clinician=%s status=away reason=offer_timeout", clinician_id)

    async def _withdraw_offer(self, consultation: Consultation, reason: str) -> bool:
        clinician_id = consultation.offered_to

        def change(c: Consultation) -> bool:
            if c.state is not OFFERED or c.offered_to != clinician_id:
                return False
            requeue(c)
            return True

        before, after = await self._update(consultation.id, change)
        if after.version == before.version or clinician_id is None:
            return False
        await self._append_audit(
            AuditEvent(
                after.id,
                self._clock(),
                "system",
                "system",
                "offer_withdrawn",
                {"clinician_id": clinician_id, "reason": reason},
            )
        )
        logger.info(
            "offer withdrawn consultation=%s clinician=%s reason=%s", after.id, clinician_id, reason
        )
        await self._notifier.to_subject(
            clinician_id,
            "consultation.offer_withdrawn",
            {"consultation_id": after.id, "reason": reason},
        )
        await self._notify_consultation(after, "consultation.updated")
        self.wake()
        return True
