"""Redis stops under a live consultation with media flowing, then comes back.

The redis-server is this test's own (durable AOF), killed by its PID and restarted on the same
port and folder. Meanwhile: requests get ``unavailable`` to that client only, /healthz answers,
media keeps flowing (it never waits on the store), and afterwards the same consultation goes on
and the background rounds pair new work again.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from rooms.roles import Role
from tests.conftest import RedisServer, RunningServer, start_redis, start_server
from tests.media.clients import ClientPeer, assert_see_and_hear_each_other
from tests.signaling.consultation_peers import Cast, Peer, check_in_payload
from tests.signaling.test_rtc_events import MediaClient
from web.keys import consultations_key
from web.settings import Settings

RED, GREEN = (220, 40, 40), (40, 200, 60)
VIDEO_HZ = 90000
OUTAGE_S = 4.0


@pytest.fixture
async def durable_redis(tmp_path: Path) -> AsyncIterator[list[RedisServer]]:
    """The current redis-server (a list: the test replaces it when it restarts one)."""
    folder = tmp_path / "redis"
    folder.mkdir()
    servers = [start_redis(folder, durable=True)]
    yield servers
    for server in servers:
        if server.process.poll() is None:
            server.process.terminate()
            server.process.wait(timeout=10)


@pytest.fixture
async def running(
    test_settings: Settings, durable_redis: list[RedisServer]
) -> AsyncIterator[RunningServer]:
    server = await start_server(replace(test_settings, store_url=durable_redis[0].url))
    yield server
    await server.runner.cleanup()


def last_pts(media: ClientPeer, participant_id: str) -> int:
    received = media.by_participant(participant_id, "video")
    assert received is not None and received.frames
    return int(received.frames[-1].pts)


async def until_ok(peer: Peer, event: str, payload: dict[str, object], within_s: float) -> object:
    """Retry while the store is still coming back (``unavailable``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        ack = await peer.call(event, payload)
        if "ok" in ack:
            return ack["ok"]
        assert ack["error"]["code"] == "unavailable", ack
        assert loop.time() < deadline, f"{event} still refused after {within_s}s"
        await asyncio.sleep(0.2)


async def test_redis_restart_under_a_live_consultation_loses_nothing(
    cast: Cast, running: RunningServer, durable_redis: list[RedisServer], tmp_path: Path
) -> None:
    outlet = await cast.outlet("outlet-1")
    cid = (await outlet.ok("consultation.check_in", check_in_payload("outlet-1")))[
        "consultation_id"
    ]
    doctor = await cast.specialist("dr-1")
    await doctor.ok("consultation.accept", {"consultation_id": cid, "pick": True})
    await outlet.ok("consultation.join", {"consultation_id": cid})
    await outlet.ok("consultation.consent", {"consultation_id": cid, "given": True})
    admin = await cast.join(Role.ADMIN, "admin-1")
    outlet_media = MediaClient(outlet, ClientPeer("outlet-1", rgb=RED), cid)
    doctor_media = MediaClient(doctor, ClientPeer("dr-1", rgb=GREEN), cid)
    try:
        await outlet_media.start()
        await doctor_media.start()
        await assert_see_and_hear_each_other(outlet_media.media, doctor_media.media)

        old = durable_redis[0]
        old.process.send_signal(signal.SIGKILL)
        old.process.wait(timeout=10)
        before = last_pts(doctor_media.media, "outlet-1")

        codes = {
            "notes": await doctor.refused(
                "consultation.notes", {"consultation_id": cid, "notes": "during the outage"}
            ),
            "check_in": await cast.peers[0].refused(
                "consultation.check_in", check_in_payload("outlet-1")
            ),
            "overview": await admin.refused("admin.overview", {}),
        }
        assert codes == dict.fromkeys(codes, "unavailable")
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{running.url}/healthz") as response:
                assert response.status == 200
        await asyncio.sleep(OUTAGE_S)
        # Media went on without the store: frames kept arriving both ways, still decodable.
        assert last_pts(doctor_media.media, "outlet-1") - before >= VIDEO_HZ
        await assert_see_and_hear_each_other(outlet_media.media, doctor_media.media)
        service = running.app[consultations_key]
        assert service.rounds_running, "rounds still running"

        durable_redis.append(start_redis(tmp_path / "redis", port=old.port, durable=True))

        overview = await until_ok(admin, "admin.overview", {}, within_s=15)
        assert isinstance(overview, dict)
        active = {c["id"]: c for c in overview["active"]}
        assert cid in active, "the live consultation survived the restart"
        people = {p["participant_id"]: p["connected"] for p in active[cid]["participants"]}
        assert people == {"outlet-1": True, "dr-1": True}
        assert active[cid]["consent"] is not None
        await doctor.ok("consultation.notes", {"consultation_id": cid, "notes": "after"})
        await asyncio.sleep(3 * running.settings.presence_timeout_s)
        still = await admin.ok("admin.overview", {})
        assert cid in {c["id"] for c in still["active"]}, "nobody was dropped as silent"

        # The rounds pair new work again: a second kiosk's request reaches a free clinician.
        kiosk = await cast.outlet("outlet-2")
        second = (await kiosk.ok("consultation.check_in", check_in_payload("outlet-2")))[
            "consultation_id"
        ]
        colleague = await cast.specialist("dr-2")
        await colleague.ok("presence.set", {"status": "available"})
        offer = await colleague.next("consultation.offered", within_s=15)
        assert offer["consultation"]["id"] == second
        await doctor.ok("consultation.end", {"consultation_id": cid})
    finally:
        await outlet_media.close()
        await doctor_media.close()
