"""Invites for remote guests (parents, interpreters) and their admission by the clinician."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

from rooms.announcer import Announcer
from rooms.audit import AuditAction
from rooms.config import ServiceConfig
from rooms.errors import Conflict, Expired, InvalidState, NotFound, TooManyInvites
from rooms.models import Consultation, Invite, Participant
from rooms.notify import Actor
from rooms.repository import ConsultationRepository
from rooms.roles import Role
from rooms.rules import require_assigned, require_caretaker, require_clinician
from rooms.store import Store
from rooms.transitions import ENDED

logger = logging.getLogger(__name__)


class Invites:
    """Create and redeem single-use invites; admit or refuse waiting guests."""

    def __init__(
        self,
        store: Store,
        repository: ConsultationRepository,
        announcer: Announcer,
        config: ServiceConfig,
        clock: Callable[[], float],
        on_limit: Callable[[str], None],
    ) -> None:
        self._store = store
        self._repository = repository
        self._announcer = announcer
        self._config = config
        self._clock = clock
        self._on_limit = on_limit

    async def invite(
        self, actor: Actor, consultation_id: str, guest_role: str, ttl_s: float | None = None
    ) -> Invite:
        """Create a single-use, time-limited invite for a remote parent or interpreter."""
        consultation = await self._repository.get(consultation_id)
        require_caretaker(actor, consultation)
        if consultation.state is ENDED:
            raise InvalidState("this consultation has ended")
        now = self._clock()
        invite = Invite(
            code=secrets.token_urlsafe(18),
            consultation_id=consultation.id,
            created_by=actor.subject,
            guest_role=guest_role,
            created_at=now,
            expires_at=now + (ttl_s or self._config.default_invite_ttl_s),
        )
        await self._repository.require_audit_room(consultation.id, AuditAction.INVITE)
        limit = self._config.max_invites_per_consultation
        if not await self._store.put_invite(invite, limit):
            self._on_limit(TooManyInvites.limit)
            raise TooManyInvites(
                f"this consultation has {limit} invites neither used nor expired, the most allowed"
            )
        await self._repository.audit(
            consultation.id,
            actor,
            AuditAction.INVITE,
            {"guest_role": guest_role, "expires_at": invite.expires_at},
        )
        logger.info(
            "invite created consultation=%s by=%s guest_role=%s",
            consultation.id,
            actor.subject,
            guest_role,
        )
        return invite

    async def redeem_invite(self, code: str, name: str) -> tuple[Invite, Participant]:
        """Use an invite once: the guest becomes a (not yet admitted) participant."""
        invite = await self._store.get_invite(code)
        if invite is None:
            raise NotFound("no such invite")
        if invite.expires_at <= self._clock():
            raise Expired("this invite has expired")
        consultation = await self._repository.get(invite.consultation_id)
        if consultation.state is ENDED:
            raise InvalidState("this consultation has ended")
        guest_id = "guest-" + secrets.token_hex(8)
        redeemed = await self._store.redeem_invite(code, guest_id)
        if redeemed is None:
            raise Conflict("this invite has already been used")
        guest = Participant(guest_id, Role.GUEST, name, admitted=False)

        def change(c: Consultation) -> bool:
            if c.state is ENDED:
                raise InvalidState("this consultation has ended")
            c.participants[guest_id] = guest
            return True

        await self._repository.update(invite.consultation_id, change)
        await self._repository.audit_as(
            invite.consultation_id,
            guest_id,
            Role.GUEST,
            AuditAction.INVITE_REDEEMED,
            {"guest_role": invite.guest_role, "invited_by": invite.created_by},
        )
        logger.info("invite redeemed consultation=%s guest=%s", invite.consultation_id, guest_id)
        return redeemed, guest

    async def admit(
        self, actor: Actor, consultation_id: str, guest_id: str, admit: bool
    ) -> Consultation:
        """The treating clinician lets a waiting guest in, or turns it away."""
        require_clinician(actor)

        def change(c: Consultation) -> bool:
            require_assigned(actor, c)
            guest = c.participants.get(guest_id)
            if guest is None or guest.role is not Role.GUEST:
                raise NotFound("no such guest in this consultation")
            if guest.admitted:
                raise InvalidState("this guest is already in")
            if admit:
                guest.admitted = True
            else:
                del c.participants[guest_id]
            return True

        _, after = await self._repository.update(consultation_id, change)
        action = AuditAction.ADMIT if admit else AuditAction.REFUSE
        await self._repository.audit(after.id, actor, action, {"guest_id": guest_id})
        logger.info(
            "%s consultation=%s guest=%s by=%s",
            "admitted" if admit else "refused",
            after.id,
            guest_id,
            actor.subject,
        )
        if admit:
            await self._announcer.to_subject(
                guest_id, "consultation.admitted", {"consultation": after.to_wire()}
            )
        else:
            await self._announcer.to_subject(
                guest_id, "consultation.refused", {"consultation_id": after.id}
            )
            await self._announcer.participant_left(after.id, guest_id)
        await self._announcer.updated(after)
        return after
