"""Two server processes on one Redis: exactly one acceptor wins; a restart keeps the queue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from rooms.roles import Role
from tests.conftest import RedisServer, RunningServer, flush_redis, free_port, start_server
from tests.signaling.consultation_peers import Cast, check_in_payload
from web.settings import Settings


@pytest.fixture
async def redis_settings(test_settings: Settings, redis_server: RedisServer) -> Settings:
    await flush_redis(redis_server.url)
    return replace(test_settings, store_url=redis_server.url)


@pytest.fixture
async def two_nodes(redis_settings: Settings) -> AsyncIterator[tuple[RunningServer, RunningServer]]:
    first = await start_server(redis_settings)
    second = await start_server(replace(redis_settings, port=free_port()))
    yield first, second
    await first.runner.cleanup()
    await second.runner.cleanup()


async def test_concurrent_acceptors_on_two_nodes_exactly_one_wins(
    two_nodes: tuple[RunningServer, RunningServer],
) -> None:
    node_a, node_b = two_nodes
    on_a, on_b = Cast(node_a), Cast(node_b)
    try:
        outlet = await on_a.outlet("outlet-1")
        doctors = [
            await on_a.specialist("dr-a1"),
            await on_a.specialist("dr-a2"),
            await on_b.specialist("dr-b1"),
            await on_b.specialist("dr-b2"),
        ]
        for round_ in range(8):
            cid = (await outlet.ok("consultation.check_in", check_in_payload("outlet-1")))[
                "consultation_id"
            ]
            acks = await asyncio.gather(
                *(
                    d.call("consultation.accept", {"consultation_id": cid, "pick": True})
                    for d in doctors
                )
            )
            winners = [a["ok"]["consultation"]["clinician_id"] for a in acks if "ok" in a]
            assert len(winners) == 1, (round_, acks)
            assert [a["error"]["code"] for a in acks if "error" in a] == ["conflict"] * 3
            # Everyone, on either node, sees the same single winner.
            seen = await doctors[3].call("queue.list", {})
            assert cid not in [e["consultation_id"] for e in seen["ok"]["entries"]]
            # The kiosk ends it: an outlet has at most a few consultations open at a time.
            await outlet.ok("consultation.end", {"consultation_id": cid})
        # Pushes cross nodes: the outlet on node A hears of a clinician on node B.
        cid = (await outlet.ok("consultation.check_in", check_in_payload("outlet-1")))[
            "consultation_id"
        ]
        await doctors[2].ok("consultation.accept", {"consultation_id": cid, "pick": True})
        update = await outlet.next(
            "consultation.updated",
            lambda p: (
                p["consultation"]["id"] == cid and p["consultation"]["clinician_id"] == "dr-b1"
            ),
        )
        assert update["consultation"]["state"] == "active"
    finally:
        await on_a.close()
        await on_b.close()


async def test_restart_keeps_queue_and_consultations(redis_settings: Settings) -> None:
    before = await start_server(redis_settings)
    cast = Cast(before)
    try:
        outlets = [await cast.outlet(f"outlet-{i}") for i in range(3)]
        ids = [
            (await o.ok("consultation.check_in", check_in_payload(f"outlet-{i}", urgent=(i == 2))))[
                "consultation_id"
            ]
            for i, o in enumerate(outlets)
        ]
        dr = await cast.specialist("dr-a")
        await dr.ok("consultation.accept", {"consultation_id": ids[0], "pick": True})
        order_before = [e["consultation_id"] for e in (await dr.ok("queue.list", {}))["entries"]]
    finally:
        await cast.close()
        await before.runner.cleanup()
    assert order_before == [ids[2], ids[1]]

    after = await start_server(replace(redis_settings, port=free_port()))
    cast = Cast(after)
    try:
        dr = await cast.specialist("dr-a")
        assert dr.pushes["session.ready"][0]["resume"]["consultation"]["id"] == ids[0]
        listing = await dr.ok("queue.list", {})
        assert [e["consultation_id"] for e in listing["entries"]] == order_before
        outlet = await cast.outlet("outlet-1")
        resumed = outlet.pushes["session.ready"][0]["resume"]["consultation"]
        assert resumed["id"] == ids[1] and resumed["state"] == "waiting"
        await outlet.next(
            "queue.position", lambda p: p["consultation_id"] == ids[1] and p["position"] == 2
        )
        admin = await cast.join(Role.ADMIN, "admin-1")
        events = (await admin.ok("audit.list", {"consultation_id": ids[0]}))["events"]
        assert [e["action"] for e in events][:2] == ["check_in", "pick"]
    finally:
        await cast.close()
        await after.runner.cleanup()
