"""Visits in SQL: one row per consultation, written as it is checked in, taken and ended."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from records.database import RecordsDatabase
from records.models import Visit
from records.sealing import Sealer
from records.tables import VisitRow
from records.visit_facts import refresh

_TABLE = "visits"


class VisitRecords:
    """The ``visits`` table (the clinician's name is sealed)."""

    def __init__(self, database: RecordsDatabase, sealer: Sealer) -> None:
        self._db = database
        self._sealer = sealer

    async def keep(self, visit: Visit) -> None:
        """Write the visit as it now is (a new row at check-in, updated at each milestone)."""
        async with self._db.transaction() as session:
            row = await session.get(VisitRow, visit.consultation_id, with_for_update=True)
            if row is None:
                row = VisitRow(
                    consultation_id=visit.consultation_id, checked_in_at=visit.checked_in_at
                )
                session.add(row)
            # Whether the patient's earlier visits were followed up depends on this one.
            patients = {row.patient_id, visit.patient_id}
            row.patient_id = visit.patient_id
            row.service = visit.service
            row.outlet_id = visit.outlet_id
            row.started_at = visit.started_at
            row.ended_at = visit.ended_at
            # The clinician may have left the room by the end: keep the name taken at accept.
            if visit.clinician_name is not None or visit.clinician_id != row.clinician_id:
                row.clinician_name_sealed = self._sealer.seal_optional(
                    visit.clinician_name, _TABLE, visit.consultation_id, "clinician_name"
                )
            row.clinician_id = visit.clinician_id
            row.outcome = visit.outcome
            await refresh(session, self._db.dialect, visit.consultation_id, patients)

    async def get(self, consultation_id: str) -> Visit | None:
        async def query(session: AsyncSession) -> Visit | None:
            row = await session.get(VisitRow, consultation_id)
            return None if row is None else self._visit_of(row)

        return await self._db.read(query)

    async def of_patient(self, patient_id: str, limit: int) -> list[Visit]:
        """The patient's newest ``limit`` visits, newest first."""
        statement = (
            select(VisitRow)
            .where(VisitRow.patient_id == patient_id)
            .order_by(VisitRow.checked_in_at.desc())
            .limit(limit)
        )

        async def query(session: AsyncSession) -> list[Visit]:
            return [self._visit_of(row) for row in await session.scalars(statement)]

        return await self._db.read(query)

    def _visit_of(self, row: VisitRow) -> Visit:
        return Visit(
            row.consultation_id,
            row.patient_id,
            row.service,
            row.outlet_id,
            row.checked_in_at,
            row.started_at,
            row.ended_at,
            row.clinician_id,
            self._sealer.open_optional(
                row.clinician_name_sealed, _TABLE, row.consultation_id, "clinician_name"
            ),
            row.outcome,
        )
