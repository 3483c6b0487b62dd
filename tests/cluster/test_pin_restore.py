"""After an outage a node pins again the consultations it carries, if the store lost their pins
(a Redis restarted without them, or a promoted replica that missed the last writes)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from rooms.errors import StoreUnavailable
from rooms.nodes import NodeDirectory, NodeRecord
from tests.cluster.test_placement import record
from web.node_state import Heartbeat


class FlakyDirectory(NodeDirectory):
    """A real directory whose heartbeats fail while ``down``."""

    down = False

    async def heartbeat(self, record: NodeRecord, ttl_s: float) -> None:
        if self.down:
            raise StoreUnavailable()
        await super().heartbeat(record, ttl_s)


@pytest.fixture
async def directory(redis_url: str) -> AsyncIterator[FlakyDirectory]:
    nodes = FlakyDirectory(redis_url)
    yield nodes
    await nodes.close()


async def test_restore_pins_only_what_has_no_pin(directory: FlakyDirectory) -> None:
    await directory.heartbeat(record("node-a", 4), 30)
    await directory.heartbeat(record("node-b", 4, cpu=90.0), 30)
    assert (await directory.place("c-kept")).node_id == "node-a"
    assert await directory.restore_pins("node-b", ["c-kept", "c-lost", "c-lost"]) == 1
    assert await directory.pin_of("c-kept") == "node-a", "an existing pin is left alone"
    assert await directory.pin_of("c-lost") == "node-b"
    assert await directory.pins_of("node-b") == ["c-lost"]
    assert await directory.restore_pins("node-b", []) == 0


async def test_the_first_beat_after_an_outage_restores_the_pins(
    directory: FlakyDirectory, redis_url: str
) -> None:
    carried = ["c-1", "c-2"]

    async def still_open() -> list[str]:
        return carried

    beat = Heartbeat(directory, lambda draining: record("node-a", 4), 1.0, 30.0, still_open)
    assert await beat.beat()
    for cid in carried:
        await directory.place(cid)
    client = redis.Redis.from_url(redis_url)
    try:
        await client.flushdb()  # the store comes back without the pins
    finally:
        await client.aclose()
    assert await beat.beat()
    assert await directory.pin_of("c-1") is None, "no outage seen: nothing restored"

    directory.down = True
    assert not await beat.beat()
    directory.down = False
    assert await beat.beat()
    assert [await directory.pin_of(cid) for cid in carried] == ["node-a", "node-a"]
