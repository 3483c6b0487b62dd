"""Placement at accept through real servers on one Redis: pinned and audited, or refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import pytest

from rooms.roles import Role
from tests.conftest import RunningServer, free_port, start_server
from tests.signaling.consultation_peers import Cast, check_in_payload
from web.settings import Settings


@pytest.fixture
async def nodes(test_settings: Settings, redis_url: str) -> AsyncIterator[list[RunningServer]]:
    base = replace(test_settings, store_url=redis_url, node_heartbeat_s=0.5, node_ttl_s=2.0)
    running = [
        await start_server(replace(base, node_id="node-a", node_capacity=1)),
        await start_server(replace(base, node_id="node-b", node_capacity=0, port=free_port())),
    ]
    yield running
    for server in running:
        await server.runner.cleanup()


async def test_accept_pins_media_and_a_full_cluster_refuses_clearly(
    nodes: list[RunningServer],
) -> None:
    node_a, node_b = nodes
    on_b = Cast(node_b)
    try:
        outlets = [await on_b.outlet(f"outlet-{i}") for i in range(2)]
        ids = [
            (await o.ok("consultation.check_in", check_in_payload(f"outlet-{i}")))[
                "consultation_id"
            ]
            for i, o in enumerate(outlets)
        ]
        doctor = await on_b.specialist("dr-a")
        await doctor.ok("consultation.accept", {"consultation_id": ids[0], "pick": True})
        ack = await doctor.call("consultation.accept", {"consultation_id": ids[1], "pick": True})
        assert ack["error"]["code"] == "cluster_full", ack
        assert "capacity" in ack["error"]["message"]
        queue = await doctor.ok("queue.list", {})
        assert [e["consultation_id"] for e in queue["entries"]] == [ids[1]]

        admin = await on_b.join(Role.ADMIN, "admin-1")
        events = (await admin.ok("audit.list", {"consultation_id": ids[0]}))["events"]
        pinned = [e for e in events if e["action"] == "media_pinned"]
        assert [e["details"] for e in pinned] == [{"node": "node-a"}]
        overview = await admin.ok("admin.overview", {})
        by_id = {n["node_id"]: n for n in overview["nodes"]}
        assert by_id["node-a"]["consultations"] == 1 and by_id["node-a"]["capacity"] == 1
        assert by_id["node-b"]["capacity"] == 0 and by_id["node-b"]["live"]

        await outlets[0].ok("consultation.end", {"consultation_id": ids[0]})
        await doctor.ok("consultation.accept", {"consultation_id": ids[1], "pick": True})
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{node_a.url}/healthz") as response:
                health = await response.json()
        assert health["node"]["id"] == "node-a" and health["node"]["cluster"] is True
        assert health["node"]["draining"] is False
    finally:
        await on_b.close()
