"""``ConsultationService``: check-in, pairing decisions, room lifecycle and transfer.

The service is composed of cohesive parts: :mod:`rooms.service_base` (state, compare-and-set
updates, notifications), :mod:`rooms.presence` (presence, connections, pairing, offers),
:mod:`rooms.rounds` (the background round and its deadlines), :mod:`rooms.invites` (guests) and
:mod:`rooms.records` (consent, notes, audit, overview).
"""

from __future__ import annotations

import logging
import uuid

from rooms.errors import (
    Conflict,
    Forbidden,
    InvalidState,
    NotFound,
    TooManyOpenConsultations,
    Unavailable,
)
from rooms.invites import InvitesMixin
from rooms.models import Consultation, Participant, QueueEntry
from rooms.notify import Actor
from rooms.records import RecordsMixin
from rooms.roles import Role
from rooms.rounds import RoundsMixin
from rooms.rules import (
    ACTIVE,
    ENDED,
    OFFERED,
    WAITING,
    finish,
    mark_if_empty,
    requeue,
    require_assigned,
    require_clinician,
    require_owner,
    require_role,
)
from rooms.service_base import CheckIn, ServiceConfig

logger = logging.getLogger(__name__)

__all__ = ["CheckIn", "ConsultationService", "ServiceConfig"]


class ConsultationService(RoundsMixin, InvitesMixin, RecordsMixin):
    """The consultation domain, transport-agnostic: it speaks through a :class:`Notifier`."""

    async def check_in(
        self, actor: Actor, request: CheckIn
    ) -> tuple[Consultation, QueueEntry | None]:
        """Queue a consultation request for the outlet; returns it with its queue entry.

        An outlet may have at most ``max_open_per_outlet`` open consultations (checked within
        this process; two processes checking in for one outlet at once could pass it by one).
        The entry is ``None`` if the consultation already left the queue (taken or ended).
        """
        require_role(actor, Role.OUTLET)
        if request.outlet_id != actor.subject:
            raise Forbidden("an outlet may only check in for itself")
        async with self._check_in_lock:
            written = await self._create_consultation(actor, request)
        await self.audit(
            written.id,
            actor,
            "check_in",
            {
                "service": written.service,
                "urgent": written.urgent,
                "appointment_at": written.appointment_at,
            },
        )
        logger.info(
            "checked in consultation=%s outlet=%s service=%s urgent=%s",
            written.id,
            written.outlet_id,
            written.service,
            written.urgent,
        )
        entry = await self._entry_for(written)
        self.wake()
        return written, entry

    async def _create_consultation(self, actor: Actor, request: CheckIn) -> Consultation:
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
            created_at=now,
            queued_at=now,
            participants={
                actor.subject: Participant(
                    actor.subject, Role.OUTLET, actor.name, connected=True, joined_at=now
                )
            },
        )
        written = await self._store.put_consultation(consultation, 0)
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

        before, after = await self._update(consultation_id, change)
        await self._after_end(actor, before, after)
        return after

    async def accept(self, actor: Actor, consultation_id: str) -> Consultation:
        """Take the consultation offered to this clinician: it becomes active."""
        require_clinician(actor)

        def change(c: Consultation) -> bool:
            if c.state is not OFFERED or c.offered_to != actor.subject:
                raise Conflict("this consultation is not (or no longer) offered to you")
            self._activate(c, actor)
            return True

        _, after = await self._update(consultation_id, change)
        await self._after_activate(actor, after, "accept")
        return after

    async def pick(self, actor: Actor, consultation_id: str) -> Consultation:
        """Take a specific waiting consultation from the queue list."""
        require_clinician(actor)

        def change(c: Consultation) -> bool:
            if c.service not in actor.services:
                raise Forbidden("you do not cover this consultation's service")
            if c.state is OFFERED and c.offered_to == actor.subject:
                self._activate(c, actor)
                return True
            if c.state is not WAITING:
                raise Conflict("this consultation has already been taken or offered")
            self._activate(c, actor)
            return True

        before, after = await self._update(consultation_id, change)
        await self._after_activate(actor, after, "pick")
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

        _, after = await self._update(consultation_id, change)
        await self.audit(after.id, actor, "decline", {})
        logger.info("declined consultation=%s clinician=%s", after.id, actor.subject)
        await self._notify_consultation(after, "consultation.updated")
        self.wake()
        return after

    async def transfer(
        self, actor: Actor, consultation_id: str, service: str | None, clinician_id: str | None
    ) -> Consultation:
        """Hand an active consultation to another service or colleague (front of that queue)."""
        require_clinician(actor)
        await self._require_audit_room(consultation_id, "transfer")
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

        _, after = await self._update(consultation_id, change)
        await self.audit(
            after.id, actor, "transfer", {"service": after.service, "clinician_id": clinician_id}
        )
        logger.info(
            "transferred consultation=%s from=%s service=%s to=%s",
            after.id,
            actor.subject,
            after.service,
            clinician_id or "-",
        )
        await self._tell_left(after.id, actor.subject)
        if after.state is OFFERED and after.offered_to:
            await self._announce_offer(after)
        await self._notify_consultation(after, "consultation.updated")
        self.wake()
        return after

    async def join(self, actor: Actor, consultation_id: str) -> Consultation:
        """Enter (or re-enter) the room; a guest waits at the door until admitted."""
        now = self._clock()
        rejoined = False

        def change(c: Consultation) -> bool:
            nonlocal rejoined
            self._authorize_view(actor, c)
            if c.state is ENDED:
                raise InvalidState("this consultation has ended")
            participant = c.participants.get(actor.subject)
            if actor.role.is_clinician:
                require_assigned(actor, c)
                if c.state is not ACTIVE:
                    raise InvalidState("accept the consultation before joining it")
            elif actor.role is Role.GUEST:
                if participant is None:
                    raise Forbidden("redeem your invite before joining")
            elif actor.role is not Role.OUTLET:
                raise Forbidden("this role does not take part in consultations")
            if participant is None:
                participant = Participant(actor.subject, actor.role, actor.name)
                c.participants[actor.subject] = participant
            rejoined = participant.disconnected_at is not None
            participant.connected = True
            participant.disconnected_at = None
            participant.joined_at = participant.joined_at or now
            if participant.admitted:
                c.empty_since = None
            return True

        _, after = await self._update(consultation_id, change)
        me = after.participants[actor.subject]
        await self.audit(
            after.id, actor, "rejoin" if rejoined else "join", {"admitted": me.admitted}
        )
        logger.info(
            "joined consultation=%s participant=%s admitted=%s rejoin=%s",
            after.id,
            actor.subject,
            me.admitted,
            rejoined,
        )
        if not me.admitted and after.clinician_id:
            await self._notifier.to_subject(
                after.clinician_id,
                "consultation.guest_waiting",
                {"consultation_id": after.id, "guest": me.to_wire()},
            )
        await self._notify_consultation(after, "consultation.updated", skip=actor.subject)
        return after

    async def leave(self, actor: Actor, consultation_id: str) -> Consultation:
        """Leave the room for good (the consultation goes on; empty rooms end after a grace)."""
        now = self._clock()

        def change(c: Consultation) -> bool:
            if actor.subject not in c.participants:
                raise NotFound("you are not in this consultation")
            if c.state is not ACTIVE:
                raise InvalidState("only an active consultation can be left; cancel a waiting one")
            del c.participants[actor.subject]
            mark_if_empty(c, now)
            return True

        _, after = await self._update(consultation_id, change)
        await self.audit(after.id, actor, "leave", {})
        logger.info("left consultation=%s participant=%s", after.id, actor.subject)
        await self._tell_left(after.id, actor.subject)
        await self._notify_consultation(after, "consultation.updated")
        return after

    async def end(self, actor: Actor, consultation_id: str, reason: str) -> Consultation:
        """End the consultation (outlet, treating clinician or admin)."""

        def change(c: Consultation) -> bool:
            if actor.role is not Role.ADMIN:
                if actor.role is Role.OUTLET:
                    require_owner(actor, c)
                else:
                    require_assigned(actor, c)
            if c.state is ENDED:
                raise InvalidState("this consultation has already ended")
            finish(c, self._clock(), reason)
            return True

        before, after = await self._update(consultation_id, change)
        await self._after_end(actor, before, after)
        return after

    def _activate(self, c: Consultation, actor: Actor) -> None:
        now = self._clock()
        c.state = ACTIVE
        c.clinician_id = actor.subject
        c.offered_to = None
        c.offer_expires_at = None
        c.front = False
        c.started_at = now
        c.participants[actor.subject] = Participant(
            actor.subject, actor.role, actor.name, connected=True, joined_at=now
        )
        c.empty_since = None

    async def _after_activate(self, actor: Actor, after: Consultation, action: str) -> None:
        await self.audit(after.id, actor, action, {})
        logger.info("%s consultation=%s clinician=%s", action, after.id, actor.subject)
        await self._notify_consultation(after, "consultation.updated", skip=actor.subject)
        self.wake()
