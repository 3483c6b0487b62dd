"""Whole consultation flows over Socket.IO against a running server, on both stores."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import pytest
import redis.asyncio as redis

from rooms.roles import Role
from tests.conftest import RedisServer, RunningServer, start_server
from tests.signaling.consultation_peers import Cast, check_in_payload
from web.settings import Settings


@pytest.fixture(params=["memory", "redis"])
async def app_settings(request: pytest.FixtureRequest, test_settings: Settings) -> Settings:
    if request.param == "memory":
        return test_settings
    server: RedisServer = request.getfixturevalue("redis_server")
    client = redis.Redis.from_url(server.url)
    await client.flushdb()
    await client.aclose()
    return replace(test_settings, store_url=server.url)


@pytest.fixture
async def running(app_settings: Settings) -> AsyncIterator[RunningServer]:
    server = await start_server(app_settings)
    yield server
    await server.runner.cleanup()


@pytest.fixture
async def cast(running: RunningServer) -> AsyncIterator[Cast]:
    people = Cast(running)
    yield people
    await people.close()


async def test_fair_pairing_accept_and_end(cast: Cast) -> None:
    outlets = [await cast.outlet(f"outlet-{i}") for i in range(3)]
    first = await outlets[0].ok("consultation.check_in", check_in_payload("outlet-0"))
    second = await outlets[1].ok("consultation.check_in", check_in_payload("outlet-1"))
    urgent = await outlets[2].ok("consultation.check_in", check_in_payload("outlet-2", urgent=True))
    assert (first["position"], second["position"]) == (1, 2)
    assert urgent["position"] == 1, "an urgent request goes ahead"
    assert first["estimated_wait_s"] is None, "nobody online: no honest estimate"
    await outlets[0].next("queue.position", lambda p: p["position"] == 2)

    dr_a = await cast.specialist("dr-a")
    dr_b = await cast.specialist("dr-b")
    await dr_a.ok("presence.set", {"status": "available"})
    offer = await dr_a.next("consultation.offered")
    assert offer["consultation"]["id"] == urgent["consultation_id"]
    accepted = await dr_a.ok("consultation.accept", {"consultation_id": urgent["consultation_id"]})
    assert accepted["consultation"]["state"] == "active"
    update = await outlets[2].next("consultation.updated",
                                   lambda p: p["consultation"]["state"] == "active")
    assert update["consultation"]["clinician_id"] == "dr-a"

    await dr_b.ok("presence.set", {"status": "available"})
    offer_b = await dr_b.next("consultation.offered")
    assert offer_b["consultation"]["id"] == first["consultation_id"], "then the longest waiting"
    await outlets[0].next("queue.position", lambda p: p["state"] == "offered" and p["position"] == 1)

    joined = await outlets[2].ok("consultation.join", {"consultation_id": urgent["consultation_id"]})
    assert joined["admitted"] is True
    ended = await outlets[2].ok("consultation.end", {"consultation_id": urgent["consultation_id"]})
    assert ended["consultation"]["state"] == "ended"
    push = await dr_a.next("consultation.ended")
    assert push == {"consultation_id": urgent["consultation_id"], "reason": "completed",
                    "consultation": push["consultation"]}
    # dr-a is free again and the remaining request goes to it.
    offer_again = await dr_a.next("consultation.offered")
    assert offer_again["consultation"]["id"] == second["consultation_id"]
