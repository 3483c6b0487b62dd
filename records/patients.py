"""Patients in SQL: register once, find again by card code (keyed hash), read by id."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from records.codes import new_code
from records.database import RecordsDatabase
from records.models import Patient
from records.sealing import Sealer
from records.tables import PatientRow, Table

CARD_CODE_LENGTH = 7
_TABLE = "patients"
_CODE_TRIES = 8


class PatientRecords:
    """The ``patients`` table; every personal field is sealed to the patient's row."""

    def __init__(self, database: RecordsDatabase, sealer: Sealer) -> None:
        self._db = database
        self._sealer = sealer

    async def register(
        self,
        display_name: str,
        birth_year: int,
        sex: str,
        guardian_name: str | None,
        guardian_phone: str | None,
        outlet_id: str,
        at: datetime,
        evidence: Callable[[Patient], list[Table]],
    ) -> Patient:
        """A new patient with a fresh card code (drawn again on the rare collision), written in
        one transaction with the rows ``evidence`` makes for it (consent, audit)."""
        for _ in range(_CODE_TRIES):
            patient = Patient(
                uuid.uuid4().hex,
                new_code(CARD_CODE_LENGTH),
                display_name,
                birth_year,
                sex,
                outlet_id,
                at,
                guardian_name,
                guardian_phone,
            )
            try:
                async with self._db.transaction() as session:
                    session.add(self._row_of(patient))
                    await session.flush()  # a card code collision shows here, before the rest
                    session.add_all(evidence(patient))
            except IntegrityError:
                continue
            return patient
        raise RuntimeError("no free card code after several draws")

    async def get(self, patient_id: str) -> Patient | None:
        async def query(session: AsyncSession) -> Patient | None:
            row = await session.get(PatientRow, patient_id)
            return None if row is None else self._patient_of(row)

        return await self._db.read(query)

    async def by_card_code(self, card_code: str) -> Patient | None:
        """The patient holding this (normalised) card code."""
        digest = self._sealer.lookup_hash(card_code)

        async def query(session: AsyncSession) -> Patient | None:
            row = await session.scalar(select(PatientRow).where(PatientRow.card_hash == digest))
            return None if row is None else self._patient_of(row)

        return await self._db.read(query)

    def _row_of(self, patient: Patient) -> PatientRow:
        pid = patient.patient_id
        seal = self._sealer.seal
        return PatientRow(
            patient_id=pid,
            card_hash=self._sealer.lookup_hash(patient.card_code),
            card_sealed=seal(patient.card_code, _TABLE, pid, "card_code"),
            name_sealed=seal(patient.display_name, _TABLE, pid, "display_name"),
            birth_year=patient.birth_year,
            sex=patient.sex,
            guardian_name_sealed=self._sealer.seal_optional(
                patient.guardian_name, _TABLE, pid, "guardian_name"
            ),
            guardian_phone_sealed=self._sealer.seal_optional(
                patient.guardian_phone, _TABLE, pid, "guardian_phone"
            ),
            registered_outlet=patient.registered_outlet,
            registered_at=patient.registered_at,
        )

    def _patient_of(self, row: PatientRow) -> Patient:
        pid = row.patient_id
        return Patient(
            pid,
            self._sealer.open(row.card_sealed, _TABLE, pid, "card_code"),
            self._sealer.open(row.name_sealed, _TABLE, pid, "display_name"),
            row.birth_year,
            row.sex,
            row.registered_outlet,
            row.registered_at,
            self._sealer.open_optional(row.guardian_name_sealed, _TABLE, pid, "guardian_name"),
            self._sealer.open_optional(row.guardian_phone_sealed, _TABLE, pid, "guardian_phone"),
        )
