"""The migrations: from an empty database, from the previous schema with its data kept, and in
agreement with the tables declared in ``records/tables.py``, on SQLite and PostgreSQL."""

from __future__ import annotations

import secrets
import time
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from recording.keys import Keyring
from records.audit_trail import SqlAuditTrail
from records.columns import utc
from records.database import RecordsDatabase
from records.facade import Records
from records.recording_index import SqlRecordingIndex
from records.tables import Table
from rooms.models import AuditEvent
from tests.conftest import TEST_SHARE_RULES
from tests.records.conftest import nothing_else

HEAD = "0006"


def differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Table.metadata))


async def test_an_empty_database_migrates_to_the_declared_schema(records_url: str) -> None:
    database = RecordsDatabase(records_url)
    try:
        assert await database.revision() is None
        await database.upgrade()
        await database.upgrade()  # idempotent: every start runs it
        assert await database.revision() == HEAD
        async with database.engine.connect() as connection:
            assert await connection.run_sync(differences) == []
    finally:
        await database.close()


async def test_the_previous_schema_and_its_data_migrate_forward(records_url: str) -> None:
    database = RecordsDatabase(records_url)
    try:
        await database.migrate_to("0001")
        audit, index = SqlAuditTrail(database), SqlRecordingIndex(database)
        event = AuditEvent("c-1", time.time(), "outlet-1", "outlet", "check_in", {"n": 1})
        assert await audit.append_audit(event, 10) == "written"
        await index.save_recording({"recording_id": "r-1", "consultation_id": "c-1"})
    finally:
        await database.close()

    records = Records(records_url, Keyring.of([], secrets.token_bytes(32)), TEST_SHARE_RULES)
    await records.open()
    try:
        assert await records.database.revision() == HEAD
        (kept,) = await records.audit.audit_for("c-1")
        assert kept.to_dict() | {"at": 0} == event.to_dict() | {"at": 0}
        assert abs(kept.at - event.at) < 1e-5  # stored to the microsecond
        assert await records.recordings.get_recording("r-1") is not None
        # The new tables work on the migrated database.
        patient = await records.patients.register(
            "Li Na", 2016, "female", None, None, "outlet-1", utc(event.at), nothing_else
        )
        assert await records.patients.get(patient.patient_id) == patient
    finally:
        await records.close()
