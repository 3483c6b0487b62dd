"""Clinic hours in SQL: one row per clinician and service (the hours as a checked document)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from records.clinic_hours import ClinicHours, hours_of
from records.database import RecordsDatabase
from records.tables import ScheduleRow

MAX_SCHEDULES_PER_SERVICE = 2000


class ScheduleRecords:
    """The ``clinic_schedules`` table."""

    def __init__(self, database: RecordsDatabase) -> None:
        self._db = database

    async def set(self, hours: ClinicHours, by: str, at: datetime) -> None:
        """Publish (or replace) the clinician's hours for the service."""
        async with self._db.transaction() as session:
            row = await session.get(ScheduleRow, (hours.clinician_id, hours.service))
            if row is None:
                row = ScheduleRow(clinician_id=hours.clinician_id, service=hours.service)
                session.add(row)
            row.slot_min = hours.slot_min
            row.document = hours.document()
            row.updated_at = at
            row.updated_by = by

    async def get(self, clinician_id: str, service: str) -> ClinicHours | None:
        async def query(session: AsyncSession) -> ClinicHours | None:
            row = await session.get(ScheduleRow, (clinician_id, service))
            return None if row is None else _hours_of(row)

        return await self._db.read(query)

    async def of_clinician(self, clinician_id: str) -> list[ClinicHours]:
        statement = (
            select(ScheduleRow)
            .where(ScheduleRow.clinician_id == clinician_id)
            .order_by(ScheduleRow.service)
        )
        return await self._rows(statement)

    async def covering(self, service: str) -> list[ClinicHours]:
        """Every clinician's hours for the service (bounded), by clinician id."""
        statement = (
            select(ScheduleRow)
            .where(ScheduleRow.service == service)
            .order_by(ScheduleRow.clinician_id)
            .limit(MAX_SCHEDULES_PER_SERVICE)
        )
        return await self._rows(statement)

    async def _rows(self, statement: Select[ScheduleRow]) -> list[ClinicHours]:
        async def query(session: AsyncSession) -> list[ClinicHours]:
            return [_hours_of(row) for row in await session.scalars(statement)]

        return await self._db.read(query)


def _hours_of(row: ScheduleRow) -> ClinicHours:
    return hours_of(row.clinician_id, row.service, row.slot_min, row.document)
