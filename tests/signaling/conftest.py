"""Fixtures shared by the signaling tests: the cast of people on a module's ``running`` server
(the shared test server unless the module overrides ``running``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from tests.conftest import RedisServer, RunningServer, flush_redis
from tests.signaling.consultation_peers import Cast
from web.settings import Settings


async def on_store(request: pytest.FixtureRequest, settings: Settings, store: str) -> Settings:
    """``settings`` as they are (memory), or on the test Redis server, flushed first."""
    if store == "memory":
        return settings
    server: RedisServer = request.getfixturevalue("redis_server")
    await flush_redis(server.url)
    return replace(settings, store_url=server.url)


@pytest.fixture
def running(server: RunningServer) -> RunningServer:
    """The server a module's people connect to: the shared test server unless overridden."""
    return server


@pytest.fixture
async def cast(running: RunningServer) -> AsyncIterator[Cast]:
    """Outlets, clinicians and guests on the module's ``running`` server, closed after the test."""
    people = Cast(running)
    yield people
    await people.close()
