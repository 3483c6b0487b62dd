"""Store fixtures: every contract test runs on the memory and the Redis backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from rooms.store import Store, create_store
from tests.conftest import RedisServer


async def flushed(url: str) -> None:
    client = redis.Redis.from_url(url)
    await client.flushdb()
    await client.aclose()


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    if request.param == "memory":
        backend = create_store(None)
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        await flushed(server.url)
        backend = create_store(server.url)
    yield backend
    await backend.close()
