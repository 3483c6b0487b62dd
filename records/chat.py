"""Chat in SQL: each message's sender name and text sealed, bound to the message's row."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from records.database import RecordsDatabase
from records.errors import TooManyMessages
from records.models import ChatMessage
from records.sealing import Sealer
from records.tables import ChatRow

_TABLE = "chat_messages"


class ChatRecords:
    """The ``chat_messages`` table."""

    def __init__(self, database: RecordsDatabase, sealer: Sealer) -> None:
        self._db = database
        self._sealer = sealer

    async def add(
        self,
        consultation_id: str,
        sender: str,
        name: str,
        role: str,
        text: str,
        at: datetime,
        max_messages: int,
        to: str | None = None,
    ) -> ChatMessage:
        """Keep a message, unless the consultation already holds ``max_messages``."""
        message_id = "msg-" + secrets.token_urlsafe(12)
        async with self._db.transaction() as session:
            await self._db.serialise(session, "chat:" + consultation_id)
            held = await session.scalar(
                select(func.count())
                .select_from(ChatRow)
                .where(ChatRow.consultation_id == consultation_id)
            )
            if (held or 0) >= max_messages:
                raise TooManyMessages()
            row = ChatRow(
                message_id=message_id,
                consultation_id=consultation_id,
                sent_at=at,
                from_subject=sender,
                role=role,
                to_subject=to,
                name_sealed=self._sealer.seal(name, _TABLE, message_id, "name"),
                text_sealed=self._sealer.seal(text, _TABLE, message_id, "text"),
            )
            session.add(row)
            await session.flush()
            return self._message_of(row)

    async def page(self, consultation_id: str, after: int, count: int) -> list[ChatMessage]:
        """Up to ``count`` messages after sequence number ``after``, oldest first."""

        async def query(session: AsyncSession) -> list[ChatMessage]:
            rows = await session.scalars(
                select(ChatRow)
                .where(ChatRow.consultation_id == consultation_id, ChatRow.id > after)
                .order_by(ChatRow.id)
                .limit(count)
            )
            return [self._message_of(row) for row in rows]

        return await self._db.read(query)

    def _message_of(self, row: ChatRow) -> ChatMessage:
        return ChatMessage(
            row.id,
            row.message_id,
            row.consultation_id,
            row.sent_at,
            row.from_subject,
            self._sealer.open(row.name_sealed, _TABLE, row.message_id, "name"),
            row.role,
            self._sealer.open(row.text_sealed, _TABLE, row.message_id, "text"),
            row.to_subject,
        )
