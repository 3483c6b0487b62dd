"""SIGTERM with clients, live calls and a recording: the server exits quickly and cleanly."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import replace
from pathlib import Path

import pytest
import redis.asyncio as redis

from recording.keys import load_keyring
from rooms.roles import Role
from tests.conftest import start_server
from tests.media.clients import ClientPeer
from tests.recording.synthetic import open_recording
from tests.server_process import ServerProcess, spawn_server
from tests.signaling.consultation_peers import Cast, Peer, check_in_payload
from tests.signaling.test_rtc_events import MediaClient
from web.keys import records_key
from web.settings import Settings

EXIT_WITHIN_S = 5.0


async def live_call(cast: Cast, number: int) -> tuple[str, Peer, list[MediaClient]]:
    """An active consultation of outlet ``number`` with its specialist, both sending media."""
    outlet = await cast.outlet(f"outlet-{number}")
    checked = await outlet.ok("consultation.check_in", check_in_payload(f"outlet-{number}"))
    doctor = await cast.specialist(f"dr-{number}")
    await doctor.ok("presence.set", {"status": "available"})
    consultation_id = checked["consultation_id"]
    await doctor.next("consultation.offered", lambda p: p["consultation"]["id"] == consultation_id)
    await doctor.ok("consultation.accept", {"consultation_id": consultation_id})
    await outlet.ok("consultation.join", {"consultation_id": consultation_id})
    media = [
        MediaClient(outlet, ClientPeer(f"outlet-{number}", rgb=(200, 30, 30)), consultation_id),
        MediaClient(doctor, ClientPeer(f"dr-{number}", rgb=(30, 200, 30)), consultation_id),
    ]
    for client in media:
        await client.start()
    await media[1].media.wait_for(f"outlet-{number}", "video")
    await media[0].media.wait_for(f"dr-{number}", "video")
    return consultation_id, outlet, media


@pytest.mark.parametrize(
    ("signum", "store"),
    [(signal.SIGTERM, "memory"), (signal.SIGINT, "memory"), (signal.SIGTERM, "redis")],
)
async def test_a_busy_server_stops_within_5_s_and_leaves_playable_recordings(
    tmp_path: Path,
    signum: int,
    store: str,
    request: pytest.FixtureRequest,
    test_settings: Settings,
) -> None:
    recordings = tmp_path / "recordings"
    args = []
    if store == "redis":
        url = request.getfixturevalue("redis_server").url
        client = redis.Redis.from_url(url)
        await client.flushdb()  # no waiting consultation of another test is offered first
        await client.aclose()
        args = ["--store", url]
    server: ServerProcess = await spawn_server(recordings, *args)
    cast = Cast(server)  # type: ignore[arg-type]  # a server process stands in for RunningServer
    media: list[MediaClient] = []
    try:
        calls = [await live_call(cast, number) for number in (1, 2)]
        for clients in calls:
            media.extend(clients[2])
        for number in range(6):  # idle clients: 4 in the calls + 6 = 10 connected
            await cast.join(Role.OUTLET, f"idle-{number}")
        consultation_id, outlet, _ = calls[0]
        ref = {"consultation_id": consultation_id}
        await outlet.ok("consultation.consent", {**ref, "given": True})
        doctor = cast.peers[1]
        await doctor.ok("recording.start", ref)
        await asyncio.sleep(3.0)
        assert all(peer.client.connected for peer in cast.peers) and len(cast.peers) == 10

        elapsed, output = await server.stop(signum)

        assert elapsed < EXIT_WITHIN_S, (elapsed, output[-3000:])
        assert server.process.returncode == 0, output[-3000:]
        assert "Traceback" not in output, output[-3000:]
        for peer in cast.peers:
            for _ in range(50):
                if not peer.client.connected:
                    break
                await asyncio.sleep(0.1)
            assert not peer.client.connected, "the server closed every client connection"
    finally:
        for client in media:
            await client.close()
        await cast.close()
        await server.ensure_stopped()

    keyring = load_keyring(None, None, recordings.with_name("recordings.keys"), production=False)
    files = sorted(recordings.rglob("*.enc"))
    assert {f.name for f in files} >= {
        "outlet-1-camera.webm.enc",
        "outlet-1-microphone.webm.enc",
        "dr-1-camera.webm.enc",
        "dr-1-microphone.webm.enc",
    }
    for path in files:
        with open_recording(path, keyring) as container:  # complete: the last box is final
            stream = container.streams[0]
            minimum = 60 if stream.type == "video" else 100  # 3 s of 30 fps video, 50 Hz audio
            frames = list(container.decode(stream))
            assert container.duration and float(container.duration) / 1e6 > 2.0, path.name
        assert len(frames) > minimum, path.name

    if store == "redis":  # the index survived: the next start makes the composite left pending
        settings = replace(test_settings, store_url=args[1], recordings_dir=recordings)
        restarted = await start_server(settings)
        try:
            for _ in range(120):
                index = restarted.app[records_key].recordings
                (meta,) = await index.recordings_for(consultation_id)
                if meta["status"] == "ready" and "file" in (meta["composite"] or {}):
                    break
                await asyncio.sleep(0.5)
            assert meta["composite"]["key_id"] == keyring.current_id, meta["composite"]
            with open_recording(recordings / meta["composite"]["file"], keyring) as container:
                assert len(list(container.decode(video=0))) > 30
        finally:
            await restarted.runner.cleanup()
