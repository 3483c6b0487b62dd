"""Recording a real consultation: Socket.IO, two aiortc peers (VP8 + Opus), HTTP download, audit."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import av
import numpy as np
import pytest

from rooms.roles import Role
from tests.conftest import RedisServer, RunningServer, flush_redis, start_server
from tests.media.clients import ClientPeer, close_to, mean_rgb
from tests.recording.entries import started_entry
from tests.signaling.consultation_peers import Cast, Peer
from tests.signaling.test_rtc_events import MediaClient, active_consultation
from web.keys import recordings_key, records_key
from web.settings import Settings

RED, GREEN = (220, 40, 40), (40, 200, 60)
OUTLET_HZ, DOCTOR_HZ = 440.0, 880.0


@pytest.fixture
async def rec_server(
    request: pytest.FixtureRequest, test_settings: Settings
) -> AsyncIterator[RunningServer]:
    """A server with a recording key, on the in-memory store unless a test asks for ``redis``
    (``parametrize("rec_server", [...], indirect=True)``)."""
    settings = replace(
        test_settings, recording_key=base64.b64encode(secrets.token_bytes(32)).decode()
    )
    if getattr(request, "param", "memory") == "redis":
        redis: RedisServer = request.getfixturevalue("redis_server")
        await flush_redis(redis.url)
        settings = replace(settings, store_url=redis.url)
    running = await start_server(settings)
    yield running
    await running.runner.cleanup()


@pytest.fixture
async def cast(rec_server: RunningServer) -> AsyncIterator[Cast]:
    people = Cast(rec_server)
    yield people
    await people.close()


async def get(
    server: RunningServer, path: str, token: str | None, headers: dict[str, str] | None = None
) -> tuple[int, bytes, dict[str, str]]:
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    async with (
        aiohttp.ClientSession() as session,
        session.get(server.url + path, headers=sent) as response,
    ):
        return response.status, await response.read(), dict(response.headers)


def dominant_hz(path: Path) -> float:
    with av.open(str(path)) as container:
        chunks = [frame.to_ndarray() for frame in container.decode(audio=0)]
    mono = np.concatenate([c.reshape(-1)[::2] if c.shape[0] == 1 else c[0] for c in chunks]).astype(
        np.float64
    )
    spectrum = np.abs(np.fft.rfft(mono * np.hanning(len(mono))))
    return float(np.argmax(spectrum[1:]) + 1) * 48000 / len(mono)


async def test_records_a_real_consultation_and_serves_it_to_its_clinician_only(
    cast: Cast, rec_server: RunningServer, tmp_path: Path
) -> None:
    consultation_id, outlet, doctor = await active_consultation(cast)
    outlet_media = MediaClient(
        outlet, ClientPeer("outlet-7", rgb=RED, hz=OUTLET_HZ), consultation_id
    )
    doctor_media = MediaClient(
        doctor, ClientPeer("dr-li", rgb=GREEN, hz=DOCTOR_HZ), consultation_id
    )
    ref = {"consultation_id": consultation_id}
    try:
        await outlet_media.start()
        await doctor_media.start()
        await doctor_media.media.wait_for("outlet-7", "video")
        await outlet_media.media.wait_for("dr-li", "video")

        assert await doctor.refused("recording.start", ref) == "invalid_state"  # no consent yet
        assert await outlet.refused("recording.start", ref) == "forbidden"
        await outlet.ok("consultation.consent", {**ref, "given": True, "purpose": "recording"})
        started = await doctor.ok("recording.start", ref)
        began = time.monotonic()
        assert started["active"] and started["started_at"]
        for peer in (outlet, doctor):
            state = await peer.next("recording.state", lambda p: p["active"])
            assert state["consultation_id"] == consultation_id
        assert (await doctor.ok("recording.start", ref))["recording_id"] == started["recording_id"]
        await asyncio.sleep(4.0)
        stop_sent_s = time.monotonic() - began
        stopped = await doctor.ok("recording.stop", ref)
        stop_acked_s = time.monotonic() - began  # media stops somewhere in between
        assert not stopped["active"]
        await outlet.next("recording.state", lambda p: not p["active"])
    finally:
        await outlet_media.close()
        await doctor_media.close()
    await rec_server.app[recordings_key].wait_finalized()
    progress = await doctor.next("recording.composite_progress", lambda p: p["percent"] == 100.0)
    assert progress["recording_id"] == started["recording_id"]

    doctor_token = rec_server.token(Role.SPECIALIST, "dr-li", services=("ophthalmology",))
    status, body, _ = await get(
        rec_server, f"/api/recordings?consultation_id={consultation_id}", doctor_token
    )
    assert status == 200
    (listed,) = json.loads(body)["recordings"]
    assert listed["status"] == "ready" and listed["consent"]["purpose"] == "recording"
    tracks = {t["track_name"]: t for t in listed["tracks"]}
    assert set(tracks) == {
        "outlet-7-camera",
        "outlet-7-microphone",
        "dr-li-camera",
        "dr-li-microphone",
    }
    assert all(t["encrypted"] and t["size"] > 0 and len(t["sha256"]) == 64 for t in tracks.values())
    on_disk = [p for p in rec_server.settings.recordings_dir.rglob("*") if p.is_file()]
    assert on_disk and all(p.name.endswith(".enc") for p in on_disk), "only encrypted files"
    assert all(b"\x1a\x45\xdf\xa3" not in p.read_bytes() for p in on_disk)

    recording = f"/api/recordings/{listed['recording_id']}/tracks"
    for name, track in tracks.items():
        status, data, headers = await get(rec_server, f"{recording}/{name}", doctor_token)
        assert status == 200 and len(data) == track["size"] and headers["Accept-Ranges"] == "bytes"
        assert hashlib.sha256(data).hexdigest() == track["sha256"]
        path = tmp_path / f"{name}.webm"
        path.write_bytes(data)
        with av.open(str(path)) as container:
            stream = (
                container.streams.video[0]
                if track["kind"] == "video"
                else container.streams.audio[0]
            )
            assert stream.codec_context.name == ("vp8" if track["kind"] == "video" else "opus")
            duration = float(container.duration or 0) / 1e6
        assert 0.9 * stop_sent_s <= duration <= 1.1 * stop_acked_s, (name, duration, stop_sent_s)
        if track["kind"] == "video":
            with av.open(str(path)) as container:
                frames = list(container.decode(video=0))
            assert len(frames) > 3.5 * 25
            expected = RED if name.startswith("outlet") else GREEN
            assert close_to(mean_rgb(frames[len(frames) // 2]), expected)
        else:
            expected_hz = OUTLET_HZ if name.startswith("outlet") else DOCTOR_HZ
            assert abs(dominant_hz(path) - expected_hz) < 15

    size = tracks["outlet-7-camera"]["size"]
    middle = size // 2
    status, part, headers = await get(
        rec_server,
        f"{recording}/outlet-7-camera",
        doctor_token,
        {"Range": f"bytes={middle}-{middle + 999}"},
    )
    assert status == 206 and headers["Content-Range"] == f"bytes {middle}-{middle + 999}/{size}"
    assert part == (tmp_path / "outlet-7-camera.webm").read_bytes()[middle : middle + 1000]
    status, tail, _ = await get(
        rec_server, f"{recording}/outlet-7-camera", doctor_token, {"Range": "bytes=-100"}
    )
    assert status == 206 and tail == (tmp_path / "outlet-7-camera.webm").read_bytes()[-100:]

    status, data, _ = await get(rec_server, f"{recording}/composite", doctor_token)
    assert status == 200
    composite = tmp_path / "composite.webm"
    composite.write_bytes(data)
    with av.open(str(composite)) as container:
        assert container.streams.video[0].width == 640 and container.streams.audio
        picture = list(container.decode(video=0))[-10].to_ndarray(format="rgb24")
    left, right = (
        picture[60:180, 80:240].reshape(-1, 3).mean(0),
        picture[60:180, 400:560].reshape(-1, 3).mean(0),
    )
    assert {
        tuple(int(v) for v in left).index(max(left)),
        tuple(int(v) for v in right).index(max(right)),
    } == {0, 1}

    admin = rec_server.token(Role.ADMIN, "admin-1")
    assert (await get(rec_server, f"{recording}/dr-li-camera", admin, {"Range": "bytes=0-9"}))[
        0
    ] == 206
    refusals = {
        "guest": rec_server.token(Role.GUEST, "guest-1", consultation_id=consultation_id),
        "outlet": rec_server.token(Role.OUTLET, "outlet-7"),
        "other specialist": rec_server.token(Role.SPECIALIST, "dr-wu", services=("ophthalmology",)),
    }
    for who, token in refusals.items():
        assert (await get(rec_server, f"{recording}/outlet-7-camera", token))[0] == 403, who
        assert (await get(rec_server, f"/api/recordings?consultation_id={consultation_id}", token))[
            0
        ] == 403, who
    assert (await get(rec_server, f"{recording}/outlet-7-camera", None))[0] == 401
    assert (await get(rec_server, f"{recording}/outlet-7-camera", "forged.token.here"))[0] == 401
    assert (await get(rec_server, f"{recording}/nope", doctor_token))[0] == 404
    assert (
        await get(
            rec_server, f"{recording}/outlet-7-camera", doctor_token, {"Range": "bytes=999999999-"}
        )
    )[0] == 416
    status, _, headers = await get(
        rec_server, f"{recording}/outlet-7-camera", doctor_token, {"Range": "bytes=-0"}
    )
    assert status == 416 and headers["Content-Range"] == f"bytes */{size}"
    status, whole, _ = await get(
        rec_server, f"{recording}/outlet-7-camera", doctor_token, {"Range": "bytes=9-2"}
    )
    assert status == 200 and len(whole) == size

    audit = await rec_server.app[records_key].audit.audit_for(consultation_id)
    actions = [(e.action, e.actor) for e in audit]
    assert ("consent", "outlet-7") in actions
    assert actions.index(("consent", "outlet-7")) < actions.index(("recording_started", "dr-li"))
    assert ("recording_stopped", "dr-li") in actions
    accessed = [e for e in audit if e.action == "recording_accessed"]
    assert {e.actor for e in accessed} == {"dr-li", "admin-1"} and len(accessed) == len(tracks) + 5


@dataclass(frozen=True)
class Recorded:
    consultation_id: str
    recording_id: str

    @property
    def ref(self) -> dict[str, str]:
        return {"consultation_id": self.consultation_id}


@contextlib.asynccontextmanager
async def outlet_recorded(cast: Cast) -> AsyncIterator[tuple[Recorded, Peer, Peer]]:
    """An active consultation whose outlet sends media and consented, being recorded (the
    outlet's media stops on leaving)."""
    consultation_id, outlet, doctor = await active_consultation(cast)
    ref = {"consultation_id": consultation_id}
    outlet_media = MediaClient(outlet, ClientPeer("outlet-7", rgb=RED), consultation_id)
    try:
        await outlet_media.start()
        await outlet.ok("consultation.consent", {**ref, "given": True})
        started = await doctor.ok("recording.start", ref)
        await outlet.next("recording.state", lambda p: p["active"])
        yield Recorded(consultation_id, started["recording_id"]), outlet, doctor
    finally:
        await outlet_media.close()


async def test_consent_withdrawal_stops_the_recording_at_once(
    cast: Cast, rec_server: RunningServer
) -> None:
    async with outlet_recorded(cast) as (recorded, outlet, doctor):
        consultation_id, ref = recorded.consultation_id, recorded.ref
        await asyncio.sleep(1.0)
        await outlet.ok("consultation.consent", {**ref, "given": False})
        state = await doctor.next("recording.state", lambda p: not p["active"])
        assert state["consultation_id"] == consultation_id
        assert not (await doctor.ok("recording.state", ref))["active"]
        assert await doctor.refused("recording.start", ref) == "invalid_state"
    await rec_server.app[recordings_key].wait_finalized()
    audit = await rec_server.app[records_key].audit.audit_for(consultation_id)
    stops = [e for e in audit if e.action == "recording_stopped"]
    assert len(stops) == 1 and stops[0].details["reason"] == "consent_withdrawn"
    (meta,) = await rec_server.app[records_key].recordings.recordings_for(consultation_id)
    assert meta["status"] == "ready" and {t["kind"] for t in meta["tracks"]} == {"audio", "video"}


async def test_guests_acknowledge_and_others_cannot_control_recording(
    cast: Cast, rec_server: RunningServer
) -> None:
    consultation_id, outlet, doctor = await active_consultation(cast)
    ref = {"consultation_id": consultation_id}
    other = await cast.specialist("dr-wu")
    assert await other.refused("recording.start", ref) in {"forbidden", "not_found"}
    assert await outlet.refused("recording.stop", ref) == "forbidden"
    assert await doctor.refused("recording.start", {"consultation_id": ""}) == "bad_request"
    await outlet.ok("recording.acknowledge", ref)
    audit = await rec_server.app[records_key].audit.audit_for(consultation_id)
    assert any(e.action == "recording_acknowledged" and e.actor == "outlet-7" for e in audit)


async def test_only_admins_set_a_legal_hold(cast: Cast, rec_server: RunningServer) -> None:
    consultation_id, _, _ = await active_consultation(cast)
    records = rec_server.app[records_key]
    entry = started_entry("r-hold", consultation_id, "x/r-hold", "ready")
    await records.recordings.save_recording(entry)
    url = rec_server.url + "/api/recordings/r-hold/legal_hold"
    doctor = rec_server.token(Role.SPECIALIST, "dr-li", services=("ophthalmology",))
    admin = rec_server.token(Role.ADMIN, "admin-1")
    async with aiohttp.ClientSession() as session:
        async with session.post(
            url, json={"hold": True}, headers={"Authorization": f"Bearer {doctor}"}
        ) as r:
            assert r.status == 403
        async with session.post(url, data="{", headers={"Authorization": f"Bearer {admin}"}) as r:
            assert r.status == 400 and (await r.json())["error"]["code"] == "bad_request"
        async with session.post(
            url, json={"hold": True}, headers={"Authorization": f"Bearer {admin}"}
        ) as r:
            assert r.status == 200 and (await r.json())["legal_hold"] is True
    assert (await records.recordings.get_recording("r-hold"))["legal_hold"] is True
    audit = await records.audit.audit_for(consultation_id)
    assert any(e.action == "recording_legal_hold" and e.actor == "admin-1" for e in audit)


async def set_legal_hold(server: RunningServer, recording_id: str, hold: bool) -> dict[str, Any]:
    admin = server.token(Role.ADMIN, "admin-1")
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{server.url}/api/recordings/{recording_id}/legal_hold",
            json={"hold": hold},
            headers={"Authorization": f"Bearer {admin}"},
        ) as response,
    ):
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body


@pytest.mark.parametrize("rec_server", ["memory", "redis"], indirect=True)
async def test_a_legal_hold_set_while_recording_survives_stop_and_finalising(
    cast: Cast, rec_server: RunningServer
) -> None:
    index = rec_server.app[records_key].recordings
    async with outlet_recorded(cast) as (recorded, _, doctor):
        recording_id = recorded.recording_id
        await asyncio.sleep(1.0)
        held = await set_legal_hold(rec_server, recording_id, True)
        assert held["legal_hold"] is True and held["status"] == "recording"
        await asyncio.sleep(1.0)
        await doctor.ok("recording.stop", recorded.ref)
    await rec_server.app[recordings_key].wait_finalized()
    stored = await index.get_recording(recording_id)
    assert stored is not None and stored["status"] == "ready" and stored["tracks"]
    assert stored["composite"]["track_name"] == "composite"  # every save of finalising has run
    assert stored["legal_hold"] is True
    released = await set_legal_hold(rec_server, recording_id, False)
    assert released["legal_hold"] is False and released["tracks"] == stored["tracks"]
    lifted = await index.get_recording(recording_id)
    assert lifted is not None and lifted["legal_hold"] is False


async def test_a_guest_is_recorded_only_after_acknowledging(
    cast: Cast, rec_server: RunningServer
) -> None:
    consultation_id, outlet, doctor = await active_consultation(cast)
    ref = {"consultation_id": consultation_id}
    invite = await doctor.ok("consultation.invite", {**ref, "guest_role": "parent"})
    async with aiohttp.ClientSession() as http:
        redeem = f"{rec_server.url}/api/invites/{invite['invite_code']}/redeem"
        async with http.post(redeem, json={"name": "Mum"}) as response:
            grant = await response.json()
    guest_id = grant["guest_id"]
    guest = await cast.with_token(grant["token"])
    await guest.ok("consultation.join", ref)
    await doctor.ok("consultation.admit", {**ref, "guest_id": guest_id})
    await guest.next("consultation.admitted")
    joined = await guest.ok("consultation.join", ref)
    assert joined["admitted"] is True

    outlet_media = MediaClient(outlet, ClientPeer("outlet-7", rgb=RED), consultation_id)
    guest_media = MediaClient(guest, ClientPeer(guest_id, rgb=GREEN, hz=DOCTOR_HZ), consultation_id)
    try:
        await outlet_media.start()
        await guest_media.start()
        await outlet_media.media.wait_for(guest_id, "video")
        await outlet.ok("consultation.consent", {**ref, "given": True})
        await doctor.ok("recording.start", ref)
        state = await guest.next("recording.state", lambda p: p["active"])
        assert state["consultation_id"] == consultation_id
        await asyncio.sleep(1.5)  # the guest has been told but has not acknowledged yet
        await guest.ok("recording.acknowledge", ref)
        acknowledged_at = time.monotonic()
        await asyncio.sleep(2.0)
        await doctor.ok("recording.stop", ref)
        stopped_at = time.monotonic()
    finally:
        await outlet_media.close()
        await guest_media.close()
    await rec_server.app[recordings_key].wait_finalized()
    (meta,) = await rec_server.app[records_key].recordings.recordings_for(consultation_id)
    tracks = {t["track_name"]: t for t in meta["tracks"]}
    outlet_video, guest_video = tracks["outlet-7-camera"], tracks[f"{guest_id}-camera"]
    assert outlet_video["offset_s"] < 0.5 and guest_video["offset_s"] > 1.4
    assert guest_video["duration_s"] < stopped_at - acknowledged_at + 0.3
