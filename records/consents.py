"""Consent evidence in SQL: who consented to what, where and when, and any withdrawal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from records.database import RecordsDatabase
from records.tables import ConsentRow


class ConsentKind(StrEnum):
    """To record a consultation, or to keep a patient's record."""

    RECORDING = "recording"
    RECORD = "record"


@dataclass(frozen=True)
class ConsentEvidence:
    """One consent as given (and withdrawn, if it was)."""

    kind: ConsentKind
    consultation_id: str | None
    patient_id: str | None
    purpose: str
    given_by: str
    role: str
    outlet_id: str
    given_at: datetime
    withdrawn_at: datetime | None = None
    withdrawn_by: str | None = None


class ConsentRecords:
    """The ``consent_evidence`` table."""

    def __init__(self, database: RecordsDatabase) -> None:
        self._db = database

    async def given(self, evidence: ConsentEvidence) -> None:
        async with self._db.transaction() as session:
            session.add(consent_row(evidence))

    async def withdrawn(self, consultation_id: str, by: str, at: datetime) -> None:
        """Mark the consultation's standing recording consent withdrawn."""
        async with self._db.transaction() as session:
            await session.execute(
                update(ConsentRow)
                .where(
                    ConsentRow.consultation_id == consultation_id,
                    ConsentRow.kind == ConsentKind.RECORDING.value,
                    ConsentRow.withdrawn_at.is_(None),
                )
                .values(withdrawn_at=at, withdrawn_by=by)
            )

    async def of_consultation(self, consultation_id: str) -> list[ConsentEvidence]:
        return await self._list(ConsentRow.consultation_id == consultation_id)

    async def of_patient(self, patient_id: str) -> list[ConsentEvidence]:
        return await self._list(ConsentRow.patient_id == patient_id)

    async def _list(self, condition: ColumnElement[bool]) -> list[ConsentEvidence]:
        statement = select(ConsentRow).where(condition).order_by(ConsentRow.id)

        async def query(session: AsyncSession) -> list[ConsentEvidence]:
            return [_evidence_of(row) for row in await session.scalars(statement)]

        return await self._db.read(query)


def consent_row(evidence: ConsentEvidence) -> ConsentRow:
    """The row that keeps a consent as given (for a transaction that writes it with more)."""
    return ConsentRow(
        kind=evidence.kind.value,
        consultation_id=evidence.consultation_id,
        patient_id=evidence.patient_id,
        purpose=evidence.purpose,
        given_by=evidence.given_by,
        role=evidence.role,
        outlet_id=evidence.outlet_id,
        given_at=evidence.given_at,
    )


def _evidence_of(row: ConsentRow) -> ConsentEvidence:
    return ConsentEvidence(
        ConsentKind(row.kind),
        row.consultation_id,
        row.patient_id,
        row.purpose,
        row.given_by,
        row.role,
        row.outlet_id,
        row.given_at,
        row.withdrawn_at,
        row.withdrawn_by,
    )
