"""One-time import of what an earlier version kept in the Redis store: every consultation's
audit trail (``tc:audit:<id>`` lists) and the recording index (``tc:recordings`` hash).

Runs at start when the store is Redis and the import has not been done yet (``imports`` table);
several nodes starting together import once (serialised, marked in the same transaction as the
last batch). The Redis keys are left in place for the operator to remove after checking.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as redis

from records.audit_trail import row_of
from records.database import RecordsDatabase
from records.tables import ImportRow, RecordingRow
from rooms.models import AuditEvent
from rooms.redis_connection import RedisOptions, connect

logger = logging.getLogger(__name__)

IMPORT_NAME = "redis_store_v1"
_AUDIT_PATTERN = "tc:audit:*"
_RECORDINGS = "tc:recordings"
_SCAN_BATCH = 500
_TIMEOUT_S = 30.0


async def import_from_redis(
    database: RecordsDatabase, url: str, options: RedisOptions
) -> dict[str, int] | None:
    """Import once; the counts imported, or ``None`` when it was done before."""
    client = connect(url, options, connect_timeout_s=_TIMEOUT_S, command_timeout_s=_TIMEOUT_S)
    try:
        async with database.transaction() as session:
            await database.serialise(session, "import:" + IMPORT_NAME)
            if await session.get(ImportRow, IMPORT_NAME) is not None:
                return None
            audit = await _audit_events(client)
            recordings = await _recordings(client)
            session.add_all(row_of(event) for event in audit)
            for meta in recordings:
                if await session.get(RecordingRow, meta["recording_id"]) is None:
                    session.add(
                        RecordingRow(
                            recording_id=meta["recording_id"],
                            consultation_id=meta["consultation_id"],
                            document=meta,
                        )
                    )
            summary = {"audit_events": len(audit), "recordings": len(recordings)}
            session.add(ImportRow(name=IMPORT_NAME, done_at=datetime.now(UTC), summary=summary))
        logger.info("imported from the Redis store %s", summary)
        return summary
    finally:
        await client.aclose()


async def _audit_events(client: redis.Redis) -> list[AuditEvent]:
    events: list[AuditEvent] = []
    async for key in client.scan_iter(match=_AUDIT_PATTERN, count=_SCAN_BATCH):
        if key.endswith(":counts") or await client.type(key) != "list":
            continue
        events += [AuditEvent.from_dict(json.loads(raw)) for raw in await client.lrange(key, 0, -1)]
    # Oldest first, so positions in the imported trail keep their order.
    events.sort(key=lambda e: e.at)
    return events


async def _recordings(client: redis.Redis) -> list[dict[str, Any]]:
    if await client.type(_RECORDINGS) != "hash":
        return []
    found = []
    for raw in (await client.hgetall(_RECORDINGS)).values():
        meta = json.loads(raw)
        if isinstance(meta.get("recording_id"), str) and isinstance(
            meta.get("consultation_id"), str
        ):
            found.append(meta)
    return found
