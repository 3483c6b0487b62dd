"""The one-time import of what an earlier version kept in the Redis store (audit lists and the
recording index hash) into the records database: at start on a Redis store, or by command."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest
import redis.asyncio as redis

from records.facade import Records
from records.redis_import import import_from_redis
from rooms.models import AuditEvent
from rooms.redis_connection import RedisOptions
from tests.conftest import RedisServer, flush_redis, start_server
from web.cli import main
from web.keys import records_key
from web.settings import Settings

EVENTS = {
    "c-old-1": [
        AuditEvent("c-old-1", 100.0, "outlet-1", "outlet", "check_in", {"service": "paediatrics"}),
        AuditEvent("c-old-1", 101.0, "dr-1", "specialist", "accept", {}),
        AuditEvent("c-old-1", 102.5, "system", "system", "end", {"reason": "completed"}),
    ],
    "c-old-2": [AuditEvent("c-old-2", 90.0, "outlet-2", "outlet", "check_in", {})],
}
RECORDING = {"recording_id": "r-old", "consultation_id": "c-old-1", "status": "ready"}


async def seed_legacy_layout(url: str) -> None:
    """The keys as the Redis store of the previous version wrote them."""
    await flush_redis(url)
    client = redis.Redis.from_url(url)
    try:
        for cid, events in EVENTS.items():
            await client.rpush(f"tc:audit:{cid}", *[json.dumps(e.to_dict()) for e in events])
            await client.hset(f"tc:audit:{cid}:counts", "n:check_in", 1)
        await client.hset("tc:recordings", "r-old", json.dumps(RECORDING))
        await client.hset("tc:recordings", "r-broken", json.dumps({"recording_id": 7}))
    finally:
        await client.aclose()


async def test_the_import_copies_audit_and_index_once(
    records: Records, redis_server: RedisServer
) -> None:
    await seed_legacy_layout(redis_server.url)
    summary = await import_from_redis(records.database, redis_server.url, RedisOptions())
    assert summary == {"audit_events": 4, "recordings": 1}
    for cid, events in EVENTS.items():
        assert await records.audit.audit_for(cid) == events
    assert await records.recordings.get_recording("r-old") == RECORDING
    assert await import_from_redis(records.database, redis_server.url, RedisOptions()) is None
    assert len(await records.audit.audit_for("c-old-1")) == 3


async def test_a_server_on_the_redis_store_imports_at_start(
    test_settings: Settings, redis_server: RedisServer
) -> None:
    await seed_legacy_layout(redis_server.url)
    running = await start_server(replace(test_settings, store_url=redis_server.url))
    try:
        records = running.app[records_key]
        assert [e.action for e in await records.audit.audit_for("c-old-1")] == [
            "check_in",
            "accept",
            "end",
        ]
        assert await records.recordings.get_recording("r-old") == RECORDING
    finally:
        await running.runner.cleanup()


def test_the_command_imports_into_the_configured_database(
    test_settings: Settings,
    redis_server: RedisServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TELECONSULT_RECORDINGS_DIR", str(test_settings.recordings_dir))
    asyncio.run(seed_legacy_layout(redis_server.url))
    url = test_settings.records_url
    args = ["db", "import-redis", "--store", redis_server.url, "--records-url", url]
    assert main(args) == 0
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "imported 4 audit entries and 1 recording index entries" in out
    assert "already imported" in out
