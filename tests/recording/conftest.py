"""Recording fixtures: the recording index on both store backends."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from rooms.store import Store, create_store
from tests.conftest import RedisServer


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    if request.param == "memory":
        backend = create_store(None)
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        client = redis.Redis.from_url(server.url)
        await client.flushdb()
        await client.aclose()
        backend = create_store(server.url)
    yield backend
    await backend.close()
