"""The recording index in SQL: one row per recording, its document as JSON."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from records.database import RecordsDatabase
from records.tables import RecordingRow
from rooms.store import check_recording_meta, updated_recording


class SqlRecordingIndex:
    """Implements :class:`rooms.store.RecordingIndex` over the ``recordings`` table."""

    def __init__(self, database: RecordsDatabase) -> None:
        self._db = database

    async def save_recording(self, meta: dict[str, Any]) -> None:
        recording_id, consultation_id = check_recording_meta(meta)
        async with self._db.transaction() as session:
            row = await session.get(RecordingRow, recording_id, with_for_update=True)
            if row is None:
                session.add(
                    RecordingRow(
                        recording_id=recording_id, consultation_id=consultation_id, document=meta
                    )
                )
            else:
                row.consultation_id = consultation_id
                row.document = dict(meta)

    async def get_recording(self, recording_id: str) -> dict[str, Any] | None:
        async def query(session: AsyncSession) -> dict[str, Any] | None:
            row = await session.get(RecordingRow, recording_id)
            return None if row is None else dict(row.document)

        return await self._db.read(query)

    async def recordings_for(self, consultation_id: str) -> list[dict[str, Any]]:
        statement = (
            select(RecordingRow)
            .where(RecordingRow.consultation_id == consultation_id)
            .order_by(RecordingRow.recording_id)
        )
        return await self._documents(statement)

    async def all_recordings(self) -> list[dict[str, Any]]:
        return await self._documents(select(RecordingRow).order_by(RecordingRow.recording_id))

    async def delete_recording(self, recording_id: str) -> None:
        async with self._db.transaction() as session:
            await session.execute(
                delete(RecordingRow).where(RecordingRow.recording_id == recording_id)
            )

    async def update_recording(
        self, recording_id: str, fields: dict[str, Any]
    ) -> dict[str, Any] | None:
        async with self._db.transaction() as session:
            row = await session.get(RecordingRow, recording_id, with_for_update=True)
            if row is None:
                return None
            updated = updated_recording(dict(row.document), fields)
            row.document = updated
            return updated

    async def _documents(self, statement: Any) -> list[dict[str, Any]]:
        async def query(session: AsyncSession) -> list[dict[str, Any]]:
            return [dict(row.document) for row in await session.scalars(statement)]

        return await self._db.read(query)
