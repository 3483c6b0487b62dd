"""Three nodes on one Redis: the outlet on A, the specialist on B, the media pinned to C."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.cluster.harness import (
    FollowingClient,
    admin_on,
    consultation_across,
    node_views,
    spawn_nodes,
    stop_nodes,
)
from tests.media.clients import ClientPeer, assert_see_and_hear_each_other
from tests.server_process import ServerProcess
from tests.signaling.consultation_peers import Cast

RED, GREEN = (220, 40, 40), (40, 200, 60)


@pytest.fixture
async def three_nodes(tmp_path: Path, redis_url: str) -> AsyncIterator[dict[str, ServerProcess]]:
    nodes = await spawn_nodes(
        tmp_path, redis_url, {"node-a": 0, "node-b": 0, "node-c": 4}, relay_timeout_s="1.0"
    )
    yield nodes
    await stop_nodes(nodes)


async def test_media_pinned_to_a_third_node_and_relay_failure_is_unavailable(
    three_nodes: dict[str, ServerProcess],
) -> None:
    on_a, on_b = Cast(three_nodes["node-a"]), Cast(three_nodes["node-b"])
    clients: list[FollowingClient] = []
    try:
        consultation_id, outlet, doctor = await consultation_across(on_a, on_b)
        outlet_media = FollowingClient(outlet, ClientPeer("outlet-1", rgb=RED), consultation_id)
        doctor_media = FollowingClient(
            doctor, ClientPeer("dr-1", rgb=GREEN, hz=660.0), consultation_id
        )
        clients += [outlet_media, doctor_media]
        await outlet_media.start(trickle=True)
        await doctor_media.start()
        await assert_see_and_hear_each_other(outlet_media.media, doctor_media.media)

        admin = await admin_on(on_a)
        for _ in range(40):  # the pinned node reports its load with its next heartbeat
            views = await node_views(admin)
            if views["node-c"]["load"]["peers"] == 2:
                break
            await asyncio.sleep(0.25)
        assert views["node-c"]["consultations"] == 1
        assert views["node-c"]["load"]["routers"] == 1 and views["node-c"]["load"]["peers"] == 2
        assert [views[n]["load"]["peers"] for n in ("node-a", "node-b")] == [0, 0]
        # Pushes from the pinned node reach a clinician connected elsewhere.
        stats = await doctor.next("rtc.stats", within_s=10)
        assert {p["participant_id"] for p in stats["participants"]} == {"outlet-1", "dr-1"}

        # The pinned node stops answering (not dead: its heartbeat resumes in time).
        node_c = three_nodes["node-c"].process
        mute = {"consultation_id": consultation_id, "source": "camera", "muted": True}
        node_c.send_signal(signal.SIGSTOP)
        try:
            ack = await outlet.call("rtc.media_state", mute)
        finally:
            node_c.send_signal(signal.SIGCONT)
        assert ack["error"]["code"] == "unavailable", ack
        assert "did not answer" in ack["error"]["message"]
        await outlet.ok("rtc.media_state", mute)  # the retry goes through
        state = await doctor.next("rtc.media_state")
        assert state["participant_id"] == "outlet-1" and state["muted"] is True
        assert not outlet_media.moves and not doctor_media.moves

        # Ended on node A: the pinned node closes the consultation's media and the pin goes.
        await outlet.ok("consultation.end", {"consultation_id": consultation_id})
        for _ in range(40):
            views = await node_views(admin)
            if views["node-c"]["load"]["routers"] == 0:
                break
            await asyncio.sleep(0.25)
        assert views["node-c"]["load"]["routers"] == 0 and views["node-c"]["consultations"] == 0
    finally:
        for client in clients:
            await client.close()
        await on_a.close()
        await on_b.close()
