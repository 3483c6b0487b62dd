"""Who is in the room: joining, leaving, dropping out and the rejoin grace."""

from __future__ import annotations

import logging
from collections.abc import Callable

from rooms.announcer import Announcer
from rooms.audit import AuditAction
from rooms.config import ServiceConfig
from rooms.errors import InvalidState, NotFound
from rooms.lifecycle import Lifecycle
from rooms.models import Consultation, Participant
from rooms.notify import Actor
from rooms.repository import ConsultationRepository
from rooms.rules import require_may_join, require_view
from rooms.transitions import ACTIVE, ENDED, finish, mark_if_empty

logger = logging.getLogger(__name__)


class Attendance:
    """Participants entering, leaving, dropping and coming back within the rejoin grace."""

    def __init__(
        self,
        repository: ConsultationRepository,
        lifecycle: Lifecycle,
        announcer: Announcer,
        config: ServiceConfig,
        clock: Callable[[], float],
    ) -> None:
        self._repository = repository
        self._lifecycle = lifecycle
        self._announcer = announcer
        self._config = config
        self._clock = clock

    async def join(self, actor: Actor, consultation_id: str) -> Consultation:
        """Enter (or re-enter) the room; a guest waits at the door until admitted."""
        now = self._clock()
        rejoined = False

        def change(c: Consultation) -> bool:
            nonlocal rejoined
            require_view(actor, c)
            if c.state is ENDED:
                raise InvalidState("this consultation has ended")
            require_may_join(actor, c)
            participant = c.participants.get(actor.subject)
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

        _, after = await self._repository.update(consultation_id, change)
        me = after.participants[actor.subject]
        action = AuditAction.REJOIN if rejoined else AuditAction.JOIN
        await self._repository.audit(after.id, actor, action, {"admitted": me.admitted})
        logger.info(
            "joined consultation=%s participant=%s admitted=%s rejoin=%s",
            after.id,
            actor.subject,
            me.admitted,
            rejoined,
        )
        if not me.admitted and after.clinician_id:
            await self._announcer.to_subject(
                after.clinician_id,
                "consultation.guest_waiting",
                {"consultation_id": after.id, "guest": me.to_wire()},
            )
        await self._announcer.updated(after, skip=actor.subject)
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

        _, after = await self._repository.update(consultation_id, change)
        await self._repository.audit(after.id, actor, AuditAction.LEAVE, {})
        logger.info("left consultation=%s participant=%s", after.id, actor.subject)
        await self._announcer.participant_left(after.id, actor.subject)
        await self._announcer.updated(after)
        return after

    async def reconnect_waiting(self, actor: Actor, consultation: Consultation) -> Consultation:
        """An outlet back within the grace keeps its queued consultation (no join needed)."""

        def change(c: Consultation) -> bool:
            participant = c.participants.get(actor.subject)
            if participant is None or participant.connected:
                return False
            participant.connected = True
            participant.disconnected_at = None
            return True

        before, after = await self._repository.update(consultation.id, change)
        if after.version != before.version:
            await self._repository.audit(
                after.id, actor, AuditAction.REJOIN, {"state": after.state.value}
            )
            logger.info("outlet back consultation=%s participant=%s", after.id, actor.subject)
        return after

    async def mark_disconnected(
        self, consultation_id: str, participant_id: str, now: float, reason: str
    ) -> None:
        """The participant's connection is gone (closed, or silent): its rejoin grace starts."""

        def change(c: Consultation) -> bool:
            participant = c.participants.get(participant_id)
            if participant is None or not participant.connected:
                return False
            participant.connected = False
            participant.disconnected_at = now
            mark_if_empty(c, now)
            return True

        changed = await self._change_participant(
            consultation_id, participant_id, change, AuditAction.DISCONNECTED, reason, now
        )
        if changed is None:
            return
        _, after = changed
        logger.info(
            "dropped consultation=%s participant=%s reason=%s grace_s=%s",
            after.id,
            participant_id,
            reason,
            self._config.rejoin_grace_s,
        )
        await self._announcer.updated(after)

    async def expire_graces(self, open_: list[Consultation], now: float) -> None:
        """Deadline step: participants gone longer than ``rejoin_grace_s`` are removed."""
        grace = self._config.rejoin_grace_s
        for c in open_:
            for participant in list(c.participants.values()):
                lost_at = participant.disconnected_at
                if lost_at is not None and lost_at + grace <= now:
                    await self._grace_expired(c.id, participant.participant_id)

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
            mark_if_empty(c, now)
            return True

        changed = await self._change_participant(
            consultation_id, participant_id, change, AuditAction.LEAVE, "rejoin_grace_expired", now
        )
        if changed is None:
            return
        before, after = changed
        logger.info("grace expired consultation=%s participant=%s", after.id, participant_id)
        if after.state is ENDED:
            await self._lifecycle.ended(None, before, after)
            return
        await self._announcer.participant_left(after.id, participant_id)
        await self._announcer.updated(after)

    async def _change_participant(
        self,
        consultation_id: str,
        participant_id: str,
        change: Callable[[Consultation], bool],
        action: AuditAction,
        reason: str,
        at: float,
    ) -> tuple[Consultation, Consultation] | None:
        """Apply ``change``; if it changed anything, audit it as the participant's own action."""
        before, after = await self._repository.update(consultation_id, change)
        if after.version == before.version:
            return None
        role = before.participants[participant_id].role
        await self._repository.audit_as(
            after.id, participant_id, role, action, {"reason": reason}, at
        )
        return before, after
