"""Fixtures for the cluster tests: a flushed database on the test redis-server."""

from __future__ import annotations

import pytest
import redis.asyncio as redis

from tests.conftest import RedisServer


@pytest.fixture
async def redis_url(redis_server: RedisServer) -> str:
    """The test Redis server's URL, its database flushed first."""
    client = redis.Redis.from_url(redis_server.url)
    await client.flushdb()
    await client.aclose()
    return redis_server.url
