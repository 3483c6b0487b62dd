"""A real recorded call: never plaintext on disk, and a SIGKILLed server's recording recovers."""

from __future__ import annotations

import asyncio
import json
import stat
from dataclasses import replace
from pathlib import Path

import aiohttp
import av
import redis.asyncio as redis

from recording.keys import load_keyring
from rooms.roles import Role
from tests.conftest import RedisServer, start_server
from tests.recording.synthetic import open_recording
from tests.server_process import spawn_server
from tests.signaling.consultation_peers import Cast
from tests.web.test_shutdown import live_call
from web.keys import records_key
from web.settings import Settings

# What plaintext recordings would show: the EBML header, the DocTypes, the Opus header, and a
# VP8 keyframe start code with the test camera's 320x240 (long enough never to occur by chance).
PLAINTEXT_MARKS = {
    "EBML header": b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01",
    "WebM DocType": b"\x42\x82\x84webm",
    "Matroska DocType": b"\x42\x82\x88matroska",
    "OpusHead": b"OpusHead",
    "VP8 keyframe": b"\x9d\x01\x2a\x40\x01\xf0\x00",
}


def plaintext_found(folder: Path) -> list[str]:
    found = []
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found.extend(
                f"{name} in {path.name}" for name, mark in PLAINTEXT_MARKS.items() if mark in data
            )
    return found


async def test_a_killed_server_leaves_only_ciphertext_and_its_recording_recovers_playable(
    tmp_path: Path, test_settings: Settings, redis_server: RedisServer
) -> None:
    client = redis.Redis.from_url(redis_server.url)
    await client.flushdb()
    await client.aclose()
    recordings = tmp_path / "recordings"
    server = await spawn_server(recordings, "--store", redis_server.url)
    cast = Cast(server)  # type: ignore[arg-type]  # a server process stands in for RunningServer
    media = []
    try:
        consultation_id, outlet, media = await live_call(cast, 1)
        ref = {"consultation_id": consultation_id}
        await outlet.ok("consultation.consent", {**ref, "given": True})
        started = await cast.peers[1].ok("recording.start", ref)
        scans = 0
        loop = asyncio.get_running_loop()
        until = loop.time() + 4.0
        while loop.time() < until:  # the files grow while the call runs: look at every stage
            assert plaintext_found(recordings) == []
            scans += 1
            await asyncio.sleep(0.1)
        assert scans > 10 and len(list(recordings.rglob("*.enc"))) == 4
        server.process.kill()  # SIGKILL: nothing is closed, finalised or flushed by the server
        await server.process.wait()
    finally:
        for item in media:
            await item.close()
        await cast.close()
        await server.ensure_stopped()

    assert plaintext_found(recordings) == []
    for path in recordings.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path
    assert stat.S_IMODE(recordings.with_name("recordings.keys").stat().st_mode) == 0o600

    settings = replace(test_settings, store_url=redis_server.url, recordings_dir=recordings)
    restarted = await start_server(settings)
    try:
        index = restarted.app[records_key].recordings
        for _ in range(80):  # the restart retries once the dead process's lock has run out
            recovered = await index.get_recording(started["recording_id"])
            if recovered is not None and recovered["status"] == "ready":
                break
            await asyncio.sleep(0.5)
        doctor = restarted.token(Role.SPECIALIST, "dr-1", services=("ophthalmology",))
        headers = {"Authorization": f"Bearer {doctor}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            listing = f"{restarted.url}/api/recordings?consultation_id={consultation_id}"
            async with http.get(listing) as response:
                (meta,) = (await response.json())["recordings"]
            assert meta["status"] == "ready" and meta["interrupted"] is True
            assert len(meta["tracks"]) == 4
            for track in meta["tracks"]:
                assert track["key_id"] == meta["key_id"]
                url = f"{restarted.url}/api/recordings/{meta['recording_id']}/tracks/"
                async with http.get(url + track["track_name"]) as response:
                    assert response.status == 200
                    plain = await response.read()
                copy = tmp_path / f"{track['track_name']}.webm"
                copy.write_bytes(plain)
                with av.open(str(copy)) as container:
                    frames = list(container.decode(container.streams[0]))
                enough = 45 if track["kind"] == "video" else 100  # of ~4 s at 30 fps / 50 Hz
                assert len(frames) >= enough, (track["track_name"], len(frames))
                assert track["duration_s"] > 2.0, track
    finally:
        await restarted.runner.cleanup()

    keyring = load_keyring(None, None, recordings.with_name("recordings.keys"), production=False)
    for path in recordings.rglob("*.enc"):  # sealed by recovery: complete files from now on
        with open_recording(path, keyring) as container:
            assert container.streams[0].codec_context.name in {"vp8", "opus"}
    assert json.dumps(meta)  # the index entry stays plain JSON (no key material)
    assert keyring.current_key.hex() not in json.dumps(meta)
