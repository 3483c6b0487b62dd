"""The audit trail in SQL: append (de-duplicated, capped per action), count, page."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from records.columns import utc
from records.database import RecordsDatabase
from records.tables import AuditRow
from rooms.models import AuditEvent
from rooms.store import AuditOutcome, audit_fingerprint


class SqlAuditTrail:
    """Implements :class:`rooms.store.AuditTrail` over the ``audit_events`` table."""

    def __init__(self, database: RecordsDatabase) -> None:
        self._db = database

    async def append_audit(self, event: AuditEvent, max_per_action: int) -> AuditOutcome:
        async with self._db.transaction() as session:
            await self._db.serialise(session, "audit:" + event.consultation_id)
            last = await session.scalar(
                select(AuditRow)
                .where(AuditRow.consultation_id == event.consultation_id)
                .order_by(AuditRow.id.desc())
                .limit(1)
            )
            if last is not None and audit_fingerprint(_event_of(last)) == audit_fingerprint(event):
                return "duplicate"
            if await _count(session, event.consultation_id, event.action) >= max_per_action:
                return "capped"
            session.add(row_of(event))
        return "written"

    async def append_patient_event(self, event: AuditEvent) -> None:
        """Append an entry about a patient's record (a look-up, a history read, a refused PIN):
        never de-duplicated or capped, since each is an access of its own (their number is
        bounded by the event rate limits and the PIN lockout)."""
        async with self._db.transaction() as session:
            session.add(row_of(event))

    async def audit_count(self, consultation_id: str, action: str) -> int:
        async def query(session: AsyncSession) -> int:
            return await _count(session, consultation_id, action)

        return await self._db.read(query)

    async def audit_for(self, consultation_id: str) -> list[AuditEvent]:
        return await self.audit_page(consultation_id, 0, -1)

    async def audit_page(self, consultation_id: str, start: int, count: int) -> list[AuditEvent]:
        """Up to ``count`` entries from position ``start`` (oldest first); ``count`` -1: all."""
        if count == 0:
            return []
        statement = (
            select(AuditRow)
            .where(AuditRow.consultation_id == consultation_id)
            .order_by(AuditRow.id)
            .offset(start)
        )
        if count > 0:
            statement = statement.limit(count)

        async def query(session: AsyncSession) -> list[AuditEvent]:
            return [_event_of(row) for row in await session.scalars(statement)]

        return await self._db.read(query)

    async def audit_for_patient(self, patient_id: str, limit: int) -> list[AuditEvent]:
        """The newest ``limit`` entries naming a patient (look-ups, history reads, reports)."""
        statement = (
            select(AuditRow)
            .where(AuditRow.patient_id == patient_id)
            .order_by(AuditRow.id.desc())
            .limit(limit)
        )

        async def query(session: AsyncSession) -> list[AuditEvent]:
            return [_event_of(row) for row in await session.scalars(statement)]

        return await self._db.read(query)


async def _count(session: AsyncSession, consultation_id: str, action: str) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(AuditRow)
        .where(AuditRow.consultation_id == consultation_id, AuditRow.action == action)
    )
    return int(count or 0)


def row_of(event: AuditEvent) -> AuditRow:
    return AuditRow(
        consultation_id=event.consultation_id,
        patient_id=event.patient_id,
        at=utc(event.at),
        actor=event.actor,
        role=event.role,
        action=event.action,
        details=event.details,
    )


def _event_of(row: AuditRow) -> AuditEvent:
    return AuditEvent(
        row.consultation_id,
        row.at.timestamp(),
        row.actor,
        row.role,
        row.action,
        dict(row.details),
        row.patient_id,
    )
