"""Chat in a consultation: those taking part write to each other; a clinician covering the
service may write to an outlet that still waits (audited); admins read it all (audited)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from records.columns import utc
from records.consultation_audit import ConsultationAudit
from records.facade import Records
from records.known_consultations import KnownConsultations
from records.models import ChatMessage
from rooms import access
from rooms.access import Access
from rooms.audit import AuditAction
from rooms.notify import Actor, Notifier
from rooms.roles import Role

logger = logging.getLogger(__name__)

CHAT_PAGE = 50


@dataclass(frozen=True)
class ChatConfig:
    """How many messages one consultation keeps."""

    max_messages: int


class ChatService:
    """``chat.send`` and ``chat.list`` act through this."""

    def __init__(
        self,
        records: Records,
        consultations: KnownConsultations,
        notifier: Notifier,
        audit: ConsultationAudit,
        config: ChatConfig,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._records = records
        self._consultations = consultations
        self._notifier = notifier
        self._audit = audit
        self._config = config
        self._clock = clock

    async def send(self, actor: Actor, consultation_id: str, text: str) -> ChatMessage:
        """Keep the message and push ``chat.message`` to every other participant (to the
        outlet alone for a message to a waiting outlet)."""
        consultation = await self._consultations.get(consultation_id)
        if access.may(actor, Access.CHAT, consultation):
            recipients = access.taking_part_subjects(consultation) - {actor.subject}
            to = None
        else:
            access.require(actor, Access.CHAT_WAITING, consultation)
            recipients = {consultation.outlet_id}
            to = consultation.outlet_id
        message = await self._records.chat.add(
            consultation.id,
            actor.subject,
            actor.name,
            actor.role.value,
            text,
            utc(self._clock()),
            self._config.max_messages,
            to,
        )
        if to is not None:
            await self._audit.write(
                actor,
                consultation,
                AuditAction.CHAT_WAITING_MESSAGE,
                {"message_id": message.message_id},
            )
        payload = {"message": message.to_wire()}
        for subject in sorted(recipients):
            await self._notifier.to_subject(subject, "chat.message", payload)
        logger.info(
            "chat message=%s consultation=%s from=%s",
            message.message_id,
            consultation.id,
            actor.subject,
        )
        return message

    async def page(
        self, actor: Actor, consultation_id: str, cursor: int
    ) -> tuple[list[ChatMessage], int | None]:
        """Messages after ``cursor`` (oldest first) and the next page's cursor (``None``: no
        more). A message to a waiting outlet is shown to that outlet, its sender and admins."""
        consultation = await self._consultations.get(consultation_id)
        access.require(actor, Access.CHAT_READ, consultation)
        page = await self._records.chat.page(consultation.id, cursor, CHAT_PAGE)
        if actor.role is Role.ADMIN:
            await self._audit.write(
                actor, consultation, AuditAction.CHAT_READ, {"cursor": cursor, "count": len(page)}
            )
        shown = [
            m
            for m in page
            if m.to is None or actor.role is Role.ADMIN or actor.subject in (m.to, m.sender)
        ]
        return shown, (page[-1].seq if len(page) == CHAT_PAGE else None)
