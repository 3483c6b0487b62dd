"""Invites for remote guests (parents, interpreters) and their admission by the clinician."""

from __future__ import annotations

import logging
import secrets

from rooms.errors import Conflict, Expired, InvalidState, NotFound, TooManyInvites
from rooms.models import AuditEvent, Consultation, Invite, Participant
from rooms.notify import Actor
from rooms.roles import Role
from rooms.rules import ENDED, require_assigned, require_clinician, require_owner
from rooms.service_base import ServiceBase

logger = logging.getLogger(__name__)


class InvitesMixin(ServiceBase):
    """Create and redeem single-use invites; admit or refuse waiting guests."""

    async def invite(
        self, actor: Actor, consultation_id: str, guest_role: str, ttl_s: float | None = None
    ) -> Invite:
        """Create a single-use, time-limited invite for a remote parent or interpreter."""
        consultation = await self._get(consultation_id)
        if actor.role is Role.OUTLET:
            require_owner(actor, consultation)
        else:
            require_clinician(actor)
            require_assigned(actor, consultation)
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
        await self._require_audit_room(consultation.id, "invite")
        limit = self._config.max_invites_per_consultation
        if not await self._store.put_invite(invite, limit):
            self._on_limit(TooManyInvites.limit)
            raise TooManyInvites(
                f"this consultation has {limit} invites neither used nor expired, the most allowed"
            )
        await self.audit(
            consultation.id,
            actor,
            "invite",
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
        consultation = await self._get(invite.consultation_id)
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

        await self._update(invite.consultation_id, change)
        await self._append_audit(
            AuditEvent(
                invite.consultation_id,
                self._clock(),
                guest_id,
                Role.GUEST.value,
                "invite_redeemed",
                {"guest_role": invite.guest_role, "invited_by": invite.created_by},
            )
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

        _, after = await self._update(consultation_id, change)
        await self.audit(after.id, actor, "admit" if admit else "refuse", {"guest_id": guest_id})
        logger.info(
            "%s consultation=%s guest=%s by=%s",
            "admitted" if admit else "refused",
            after.id,
            guest_id,
            actor.subject,
        )
        if admit:
            await self._notifier.to_subject(
                guest_id, "consultation.admitted", {"consultation": after.to_wire()}
            )
        else:
            await self._notifier.to_subject(
                guest_id, "consultation.refused", {"consultation_id": after.id}
            )
            await self._tell_left(after.id, guest_id)
        await self._notify_consultation(after, "consultation.updated")
        return after
