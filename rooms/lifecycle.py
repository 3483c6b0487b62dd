"""A consultation's life: check-in, transfer, and its end (cancelled, ended, or emptied)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable

from rooms.announcer import Announcer
from rooms.audit import SYSTEM, AuditAction
from rooms.config import ServiceConfig
from rooms.errors import Conflict, InvalidState, TooManyOpenConsultations, Unavailable
from rooms.models import CheckIn, Consultation, Participant, QueueEntry
from rooms.notify import Actor
from rooms.pairing import Pairing
from rooms.queue_view import QueueView
from rooms.repository import ConsultationRepository
from rooms.roles import Role
from rooms.rules import (
    require_assigned,
    require_check_in_for_self,
    require_clinician,
    require_may_end,
    require_owner,
)
from rooms.store import Store
from rooms.transitions import ACTIVE, ENDED, OFFERED, finish, requeue

logger = logging.getLogger(__name__)

# The check-in lock is held for two store calls; a crashed holder's lapses after the TTL.
_OUTLET_LOCK_TTL_S = 5.0
_OUTLET_LOCK_TRIES = 100
_OUTLET_LOCK_WAIT_S = 0.02


class Lifecycle:
    """Creates consultations, hands them on, and ends them (by request or by deadline)."""

    def __init__(
        self,
        store: Store,
        repository: ConsultationRepository,
        queues: QueueView,
        pairing: Pairing,
        announcer: Announcer,
        config: ServiceConfig,
        clock: Callable[[], float],
        wake: Callable[[], None],
        on_limit: Callable[[str], None],
    ) -> None:
        self._store = store
        self._repository = repository
        self._queues = queues
        self._pairing = pairing
        self._announcer = announcer
        self._config = config
        self._clock = clock
        self._wake = wake
        self._on_limit = on_limit
        self._check_in_lock = asyncio.Lock()

    async def check_in(
        self, actor: Actor, request: CheckIn
    ) -> tuple[Consultation, QueueEntry | None]:
        """Queue a consultation request for the outlet; returns it with its queue entry.

        An outlet may have at most ``max_open_per_outlet`` open consultations: the count and
        the write happen under the outlet's check-in lock in the store, so that processes
        sharing a store cannot pass the limit together. The entry is ``None`` if the
        consultation already left the queue (taken or ended).
        """
        require_check_in_for_self(actor, request.outlet_id)
        async with self._check_in_lock, self._outlet_lock(request.outlet_id):
            written = await self._create(actor, request)
        await self._repository.audit(
            written.id,
            actor,
            AuditAction.CHECK_IN,
            {
                "service": written.service,
                "urgent": written.urgent,
                "appointment_at": written.appointment_at,
                "appointment_id": written.appointment_id,
            },
        )
        logger.info(
            "checked in consultation=%s outlet=%s service=%s urgent=%s",
            written.id,
            written.outlet_id,
            written.service,
            written.urgent,
        )
        await self._announcer.visit_changed(written)
        entry = await self._queues.entry_for(written)
        self._wake()
        return written, entry

    @contextlib.asynccontextmanager
    async def _outlet_lock(self, outlet_id: str) -> AsyncIterator[None]:
        """Hold the store's check-in lock of one outlet (another process may hold it briefly)."""
        name, owner = f"check_in:{outlet_id}", uuid.uuid4().hex
        for _ in range(_OUTLET_LOCK_TRIES):
            if await self._store.try_lock(name, owner, _OUTLET_LOCK_TTL_S):
                break
            await asyncio.sleep(_OUTLET_LOCK_WAIT_S)
        else:
            raise Conflict("another check-in for this outlet is in progress; try again")
        try:
            yield
        finally:
            await self._store.release_lock(name, owner)

    async def _create(self, actor: Actor, request: CheckIn) -> Consultation:
        limit = self._config.max_open_per_outlet
        already = sum(
            1 for c in await self._store.open_consultations() if c.outlet_id == actor.subject
        )
        if already >= limit:
            self._on_limit(TooManyOpenConsultations.limit)
            raise TooManyOpenConsultations(
                f"this outlet has {already} open consultations, the most allowed ({limit})"
            )
        now = self._clock()
        consultation = Consultation(
            id="c-" + uuid.uuid4().hex,
            service=request.service,
            outlet_id=request.outlet_id,
            patient_ref=request.patient_ref,
            guardian_present=request.guardian_present,
            urgent=request.urgent,
            appointment_at=request.appointment_at,
            patient_id=request.patient_id,
            appointment_id=request.appointment_id,
            preferred_clinician=request.preferred_clinician,
            prefer_until=(
                now + self._config.preferred_clinician_wait_s
                if request.preferred_clinician
                else None
            ),
            created_at=now,
            queued_at=now,
            participants={
                actor.subject: Participant(
                    actor.subject, Role.OUTLET, actor.name, connected=True, joined_at=now
                )
            },
        )
        written = await self._store.put_consultation(consultation, 0, durable=True)
        if written is None:
            raise Conflict("consultation id collision; try again")
        return written

    async def cancel(self, actor: Actor, consultation_id: str) -> Consultation:
        """The outlet withdraws a request that is still queued."""

        def change(c: Consultation) -> bool:
            require_owner(actor, c)
            if not c.state.queued:
                raise InvalidState("only a waiting consultation can be cancelled; end it instead")
            finish(c, self._clock(), "cancelled")
            return True

        before, after = await self._repository.update(consultation_id, change)
        await self.ended(actor, before, after)
        return after

    async def end(self, actor: Actor, consultation_id: str, reason: str) -> Consultation:
        """End the consultation (outlet, treating clinician or admin)."""

        def change(c: Consultation) -> bool:
            require_may_end(actor, c)
            if c.state is ENDED:
                raise InvalidState("this consultation has already ended")
            finish(c, self._clock(), reason)
            return True

        before, after = await self._repository.update(consultation_id, change)
        await self.ended(actor, before, after)
        return after

    async def transfer(
        self, actor: Actor, consultation_id: str, service: str | None, clinician_id: str | None
    ) -> Consultation:
        """Hand an active consultation to another service or colleague (front of that queue)."""
        require_clinician(actor)
        await self._repository.require_audit_room(consultation_id, AuditAction.TRANSFER)
        now = self._clock()
        colleague = await self._store.get_presence(clinician_id) if clinician_id else None
        if clinician_id is not None:
            if clinician_id == actor.subject:
                raise InvalidState("transfer to a colleague, not to yourself")
            if colleague is None or not colleague.is_live(now, self._config.presence_timeout_s):
                raise Unavailable("that colleague is not online")

        def change(c: Consultation) -> bool:
            require_assigned(actor, c)
            if c.state is not ACTIVE:
                raise InvalidState("only an active consultation can be transferred")
            target = service or c.service
            if colleague is not None and target not in colleague.services:
                raise InvalidState("that colleague does not cover the service")
            c.service = target
            c.participants.pop(actor.subject, None)
            requeue(c)
            c.front = True
            c.clinician_id = None
            c.started_at = None
            c.declined_by = []
            if colleague is not None:
                c.state = OFFERED
                c.offered_to = colleague.clinician_id
                c.offer_expires_at = now + self._config.offer_timeout_s
            return True

        _, after = await self._repository.update(consultation_id, change)
        await self._repository.audit(
            after.id,
            actor,
            AuditAction.TRANSFER,
            {"service": after.service, "clinician_id": clinician_id},
        )
        logger.info(
            "transferred consultation=%s from=%s service=%s to=%s",
            after.id,
            actor.subject,
            after.service,
            clinician_id or "-",
        )
        await self._announcer.participant_left(after.id, actor.subject)
        await self._announcer.visit_changed(after)
        if after.state is OFFERED and after.offered_to:
            await self._pairing.announce_offer(after)
        await self._announcer.updated(after)
        self._wake()
        return after

    async def end_empty_rooms(self, open_: list[Consultation], now: float) -> None:
        """Deadline step: end active consultations empty for ``empty_room_grace_s``."""
        grace = self._config.empty_room_grace_s
        for c in open_:
            if c.state is ACTIVE and c.empty_since is not None and c.empty_since + grace <= now:
                await self._end_if_still_empty(c.id)

    async def _end_if_still_empty(self, consultation_id: str) -> None:
        now = self._clock()
        grace = self._config.empty_room_grace_s

        def change(c: Consultation) -> bool:
            if c.state is not ACTIVE or c.empty_since is None or c.empty_since + grace > now:
                return False
            finish(c, now, "empty")
            return True

        before, after = await self._repository.update(consultation_id, change)
        if after.version != before.version:
            await self.ended(None, before, after)

    async def ended(self, actor: Actor | None, before: Consultation, after: Consultation) -> None:
        """After the write that ended it: audit (``None``: the server ended it), keep the call's
        duration for wait estimates, tell everyone concerned."""
        who = actor or SYSTEM
        await self._repository.audit(after.id, who, AuditAction.END, {"reason": after.ended_reason})
        logger.info(
            "ended consultation=%s reason=%s by=%s", after.id, after.ended_reason, who.subject
        )
        if before.started_at is not None and after.ended_at is not None and before.state is ACTIVE:
            await self._store.add_duration(after.service, after.ended_at - before.started_at)
        await self._announcer.ended(before, after)
        await self._announcer.visit_changed(after)
        self._wake()
