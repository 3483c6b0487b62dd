"""A pinned node is killed mid-call: the consultation moves, media and recording go on."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from recording.keys import load_keyring
from rooms.roles import Role
from rooms.tasks import within
from tests.cluster.harness import (
    RECORDING_KEY,
    FollowingClient,
    admin_on,
    consultation_across,
    node_views,
    spawn_nodes,
    stop_nodes,
)
from tests.media.clients import ClientPeer, assert_see_and_hear_each_other
from tests.recording.synthetic import open_recording
from tests.server_process import ServerProcess
from tests.signaling.consultation_peers import Cast

RED, GREEN = (220, 40, 40), (40, 200, 60)
# The targets: loss detected within 5 s, media again within 10 s of detection.
DETECTION_S, MEDIA_AGAIN_S = 5.0, 10.0


@pytest.fixture
async def four_nodes(tmp_path: Path, redis_url: str) -> AsyncIterator[dict[str, ServerProcess]]:
    nodes = await spawn_nodes(
        tmp_path,
        redis_url,
        {"node-a": 0, "node-b": 0, "node-c": 4, "node-d": 4},
        relay_timeout_s="3.0",
    )
    yield nodes
    await stop_nodes(nodes)


async def recordings_of(server: ServerProcess, token: str, consultation_id: str) -> list[Any]:
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{server.url}/api/recordings",
            params={"consultation_id": consultation_id},
            headers={"Authorization": f"Bearer {token}"},
        ) as response:
            assert response.status == 200, await response.text()
            return list((await response.json())["recordings"])


async def test_killed_pinned_node_consultation_moves_media_and_recording_continue(
    four_nodes: dict[str, ServerProcess], tmp_path: Path
) -> None:
    on_a, on_b = Cast(four_nodes["node-a"]), Cast(four_nodes["node-b"])
    clients: list[FollowingClient] = []
    try:
        consultation_id, outlet, doctor = await consultation_across(on_a, on_b)
        ref = {"consultation_id": consultation_id}
        await outlet.ok("consultation.consent", {**ref, "given": True})
        outlet_media = FollowingClient(outlet, ClientPeer("outlet-1", rgb=RED), consultation_id)
        doctor_media = FollowingClient(
            doctor, ClientPeer("dr-1", rgb=GREEN, hz=660.0), consultation_id
        )
        clients += [outlet_media, doctor_media]
        await outlet_media.start()
        await doctor_media.start()
        await assert_see_and_hear_each_other(outlet_media.media, doctor_media.media)
        first = await doctor.ok("recording.start", ref)
        assert first["active"] is True

        admin = await admin_on(on_a)
        views = await node_views(admin)
        (pinned,) = [n for n in ("node-c", "node-d") if views[n]["consultations"] == 1]
        (spare,) = {"node-c", "node-d"} - {pinned}
        await asyncio.sleep(3.0)  # a few seconds recorded on the node about to die
        four_nodes[pinned].process.send_signal(signal.SIGKILL)
        killed_at = asyncio.get_running_loop().time()

        for client in (outlet_media, doctor_media):
            await within(client.renegotiated.wait(), DETECTION_S + MEDIA_AGAIN_S)
            assert client.moves == [
                {"consultation_id": consultation_id, "node_id": spare, "reason": "node_lost"}
            ]
        renegotiated_at = asyncio.get_running_loop().time()
        await assert_see_and_hear_each_other(outlet_media.media, doctor_media.media)
        print(f"renegotiated {renegotiated_at - killed_at:.1f}s after the kill")

        second = await doctor.ok("recording.state", ref)
        assert second["active"] is True and second["recording_id"] != first["recording_id"]
        consultation = (await outlet.ok("consultation.join", ref))["consultation"]
        assert consultation["state"] == "active" and consultation["recording"] is True
        events = (await admin.ok("audit.list", {**ref, "limit": 200}))["events"]
        actions = [e["action"] for e in events]
        assert actions.index("media_pinned") < actions.index("recording_started")
        moved_entry = next(e for e in events if e["action"] == "media_moved")
        assert moved_entry["details"] == {"from": pinned, "to": spare, "reason": "node_lost"}
        continued = next(e for e in events if e["action"] == "recording_continued")
        assert continued["details"]["continues"] == first["recording_id"]

        await asyncio.sleep(2.0)
        await doctor.ok("recording.stop", ref)
        token = four_nodes["node-b"].token(Role.SPECIALIST, "dr-1", services=("ophthalmology",))
        for _ in range(60):  # the interrupted segment is recovered once its lock runs out
            index = {
                r["recording_id"]: r
                for r in await recordings_of(four_nodes["node-b"], token, consultation_id)
            }
            if all(r["status"] == "ready" for r in index.values()) and len(index) == 2:
                break
            await asyncio.sleep(0.5)
        old, new = index[first["recording_id"]], index[second["recording_id"]]
        assert old["status"] == new["status"] == "ready", (old, new)
        assert old.get("interrupted") is True
        assert new["continues"] == old["recording_id"] and new["segment"] == 2
        keyring = load_keyring(RECORDING_KEY, None, tmp_path / "unused.keys", production=False)
        for segment in (old, new):
            assert {t["participant_id"] for t in segment["tracks"]} == {"outlet-1", "dr-1"}
            for track in segment["tracks"]:
                with open_recording(tmp_path / "recordings" / track["file"], keyring) as container:
                    assert len(list(container.decode(container.streams[0]))) > 10, track
    finally:
        for client in clients:
            await client.close()
        await on_a.close()
        await on_b.close()
