"""Pairing: offering waiting consultations to free clinicians, and their answers.

A waiting consultation whose outlet is connected is offered to the available clinician covering
its service who has been available longest and has not declined it; the clinician accepts,
declines or lets the offer lapse (then it is marked away).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace

from rooms.announcer import Announcer
from rooms.audit import SYSTEM, AuditAction
from rooms.config import ServiceConfig
from rooms.errors import Conflict
from rooms.models import ClinicianPresence, Consultation, PresenceStatus
from rooms.notify import Actor
from rooms.queue import order_queue
from rooms.queue_view import QueueView, engaged
from rooms.repository import ConsultationRepository
from rooms.rules import require_clinician, require_covers
from rooms.store import Store
from rooms.transitions import OFFERED, WAITING, activate, requeue

logger = logging.getLogger(__name__)


class Pairing:
    """Offers, their expiry and withdrawal; accept, pick and decline."""

    def __init__(
        self,
        store: Store,
        repository: ConsultationRepository,
        queues: QueueView,
        announcer: Announcer,
        config: ServiceConfig,
        clock: Callable[[], float],
        wake: Callable[[], None],
    ) -> None:
        self._store = store
        self._repository = repository
        self._queues = queues
        self._announcer = announcer
        self._config = config
        self._clock = clock
        self._wake = wake

    async def accept(self, actor: Actor, consultation_id: str) -> Consultation:
        """Take the consultation offered to this clinician: it becomes active."""

        def check(c: Consultation) -> None:
            if c.state is not OFFERED or c.offered_to != actor.subject:
                raise Conflict("this consultation is not (or no longer) offered to you")

        return await self._take(actor, consultation_id, check, AuditAction.ACCEPT)

    async def pick(self, actor: Actor, consultation_id: str) -> Consultation:
        """Take a specific waiting consultation from the queue list."""

        def check(c: Consultation) -> None:
            require_covers(actor, c.service)
            offered_to_me = c.state is OFFERED and c.offered_to == actor.subject
            if not offered_to_me and c.state is not WAITING:
                raise Conflict("this consultation has already been taken or offered")

        return await self._take(actor, consultation_id, check, AuditAction.PICK)

    async def _take(
        self,
        actor: Actor,
        consultation_id: str,
        check: Callable[[Consultation], None],
        action: AuditAction,
    ) -> Consultation:
        """The clinician takes the consultation if ``check`` lets it: it becomes active."""
        require_clinician(actor)

        def change(c: Consultation) -> bool:
            check(c)
            activate(c, actor, self._clock())
            return True

        _, after = await self._repository.update(consultation_id, change, durable=True)
        await self._repository.audit(after.id, actor, action, {})
        logger.info("%s consultation=%s clinician=%s", action.value, after.id, actor.subject)
        await self._announcer.updated(after, skip=actor.subject)
        await self._announcer.visit_changed(after)
        self._wake()
        return after

    async def decline(self, actor: Actor, consultation_id: str) -> Consultation:
        """Refuse an offer: back to the queue with its place kept, offered to someone else."""
        require_clinician(actor)

        def change(c: Consultation) -> bool:
            if c.state is not OFFERED or c.offered_to != actor.subject:
                raise Conflict("this consultation is not (or no longer) offered to you")
            requeue(c)
            c.declined_by.append(actor.subject)
            return True

        _, after = await self._repository.update(consultation_id, change)
        await self._repository.audit(after.id, actor, AuditAction.DECLINE, {})
        logger.info("declined consultation=%s clinician=%s", after.id, actor.subject)
        await self._announcer.updated(after)
        self._wake()
        return after

    async def pair(self) -> None:
        """Offer waiting consultations (in queue order) to free clinicians covering them."""
        now = self._clock()
        open_ = await self._store.open_consultations()
        busy = engaged(open_)
        live = await self._queues.live_clinicians(now)
        free = sorted(
            (
                p
                for p in live.values()
                if p.status is PresenceStatus.AVAILABLE and p.clinician_id not in busy
            ),
            key=lambda p: p.available_since,
        )
        for c in order_queue(open_, now, self._config.policy):
            if not free:
                return
            outlet = c.participants.get(c.outlet_id)
            if c.state is not WAITING or outlet is None or not outlet.connected:
                continue
            waiting_for = _waiting_for(c, now, live)
            chosen = next(
                (
                    p
                    for p in free
                    if c.service in p.services
                    and p.clinician_id not in c.declined_by
                    and waiting_for in (None, p.clinician_id)
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
            before, after = await self._repository.update(consultation.id, change)
        except Conflict:
            return False
        if after.version == before.version:
            return False
        await self._repository.audit(
            after.id, SYSTEM, AuditAction.OFFER, {"clinician_id": clinician_id}
        )
        presence = await self._store.get_presence(clinician_id)
        if presence is None or presence.status is not PresenceStatus.AVAILABLE:
            # The clinician chose another status while the offer was being written; its
            # set_presence withdraws offers it sees, this catches the one it could not see yet.
            await self.withdraw_offer(after, "clinician_unavailable")
            return False
        logger.info("offered consultation=%s clinician=%s", after.id, clinician_id)
        await self.announce_offer(after)
        await self._announcer.updated(after)
        return True

    async def announce_offer(self, consultation: Consultation) -> None:
        """``consultation.offered`` to the clinician it is offered to."""
        assert consultation.offered_to and consultation.offer_expires_at
        await self._announcer.to_subject(
            consultation.offered_to,
            "consultation.offered",
            {
                "consultation": consultation.to_wire(),
                "expires_in_s": round(consultation.offer_expires_at - self._clock(), 1),
            },
        )

    async def expire_offers(self, open_: list[Consultation], now: float) -> None:
        """Deadline step: withdraw offers that lapsed or whose clinician went offline."""
        live = await self._queues.live_clinicians(now)
        for c in open_:
            if c.state is not OFFERED:
                continue
            if c.offer_expires_at is not None and c.offer_expires_at <= now:
                await self._offer_timed_out(c)
            elif c.offered_to not in live:
                await self.withdraw_offer(c, "clinician_offline")

    async def _offer_timed_out(self, consultation: Consultation) -> None:
        clinician_id = consultation.offered_to
        if not await self.withdraw_offer(consultation, "timeout") or clinician_id is None:
            return

        def change(current: ClinicianPresence | None) -> ClinicianPresence | None:
            # Someone who lets an offer lapse is probably not at the desk: stop offering to them.
            # Compare-and-set: a status the clinician chose meanwhile is kept.
            if current is None or current.status is not PresenceStatus.AVAILABLE:
                return None
            return replace(current, status=PresenceStatus.AWAY)

        presence = await self._repository.update_presence(clinician_id, change)
        if presence is not None and presence.status is PresenceStatus.AWAY:
            logger.info("presence clinician=%s status=away reason=offer_timeout", clinician_id)

    async def withdraw_offers_to(self, clinician_id: str, reason: str) -> None:
        """Withdraw every offer to this clinician (it went busy, away or offline)."""
        for consultation in await self._store.open_consultations():
            if consultation.state is OFFERED and consultation.offered_to == clinician_id:
                await self.withdraw_offer(consultation, reason)

    async def withdraw_offer(self, consultation: Consultation, reason: str) -> bool:
        """Back to the queue if still offered to the same clinician; ``True`` if withdrawn."""
        clinician_id = consultation.offered_to

        def change(c: Consultation) -> bool:
            if c.state is not OFFERED or c.offered_to != clinician_id:
                return False
            requeue(c)
            return True

        before, after = await self._repository.update(consultation.id, change)
        if after.version == before.version or clinician_id is None:
            return False
        await self._repository.audit(
            after.id,
            SYSTEM,
            AuditAction.OFFER_WITHDRAWN,
            {"clinician_id": clinician_id, "reason": reason},
        )
        logger.info(
            "offer withdrawn consultation=%s clinician=%s reason=%s", after.id, clinician_id, reason
        )
        await self._announcer.offer_withdrawn(clinician_id, after.id, reason)
        await self._announcer.updated(after)
        self._wake()
        return True


def _waiting_for(
    consultation: Consultation, now: float, live: Mapping[str, ClinicianPresence]
) -> str | None:
    """The booked clinician a checked-in appointment is kept for: while the grace lasts, the
    clinician is online and has not declined it (``None``: anyone covering the service)."""
    preferred = consultation.preferred_clinician
    if (
        preferred is None
        or consultation.prefer_until is None
        or now >= consultation.prefer_until
        or preferred in consultation.declined_by
        or preferred not in live
    ):
        return None
    return preferred
