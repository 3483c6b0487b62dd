"""Closing the records database leaves no driver connection behind, even for a transaction whose
task was cancelled midway and again during its rollback (SQLAlchemy finishes that rollback in a
shielded task, after the task itself has ended)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from records.database import RecordsDatabase
from records.errors import RecordsUnavailable

# About a second of work for SQLite's thread: long enough to cancel the task twice meanwhile.
SLOW_QUERY = text(
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) "
    "SELECT count(*) FROM c"
)


def driver_threads() -> set[threading.Thread]:
    """aiosqlite's worker threads (one per open connection)."""
    return {t for t in threading.enumerate() if "_connection_worker_thread" in t.name}


async def test_close_waits_for_a_twice_cancelled_transaction_to_return_its_connection(
    tmp_path: Path,
) -> None:
    before = driver_threads()
    database = RecordsDatabase(f"sqlite:///{tmp_path / 'records.db'}")
    await database.upgrade()
    inside = asyncio.Event()

    async def writing() -> None:
        async with database.transaction() as session:
            inside.set()
            await session.execute(SLOW_QUERY)

    task = asyncio.create_task(writing())
    await inside.wait()
    ours = driver_threads() - before
    assert ours, "the transaction holds a driver connection"
    await asyncio.sleep(0.1)
    task.cancel()  # during the query: the rollback queues behind it
    await asyncio.sleep(0.1)
    task.cancel()  # during the rollback: the task ends, its rollback goes on
    with pytest.raises(asyncio.CancelledError):
        await task
    await database.close()
    assert {t for t in ours if t.is_alive()} == set()
    with pytest.raises(RecordsUnavailable):
        async with database.transaction():
            pass
