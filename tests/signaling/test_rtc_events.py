"""The rtc.* events over Socket.IO: real server, real consultation flow, real aiortc peers."""

from __future__ import annotations

import asyncio
import re

import pytest

from media.downlink import LinkState
from rooms.roles import Role
from signaling.rtc_events import RtcSignals
from tests.conftest import RunningServer
from tests.media.clients import ClientPeer, close_to, mean_rgb
from tests.signaling.consultation_peers import Cast, Peer, check_in_payload
from web.keys import media_registry_key

RED, GREEN = (220, 40, 40), (40, 200, 60)


async def active_consultation(cast: Cast) -> tuple[str, Peer, Peer]:
    outlet = await cast.outlet("outlet-7")
    checked = await outlet.ok("consultation.check_in", check_in_payload("outlet-7"))
    doctor = await cast.specialist("dr-li")
    await doctor.ok("presence.set", {"status": "available"})
    offer = await doctor.next("consultation.offered")
    consultation_id = offer["consultation"]["id"]
    assert consultation_id == checked["consultation_id"]
    await doctor.ok("consultation.accept", {"consultation_id": consultation_id})
    await outlet.ok("consultation.join", {"consultation_id": consultation_id})
    return consultation_id, outlet, doctor


class MediaClient:
    """A signalling peer plus an aiortc peer that answers server offers as a browser would."""

    def __init__(self, peer: Peer, media: ClientPeer, consultation_id: str) -> None:
        self.peer = peer
        self.media = media
        self.consultation_id = consultation_id
        self._answering: asyncio.Task[None] | None = None

    async def start(self, trickle: bool = False) -> None:
        async def exchange(offer: str) -> str:
            sdp = offer
            if trickle:
                sdp = re.sub(r"a=candidate:[^\r\n]*\r\n|a=end-of-candidates\r\n", "", offer)
            ack = await self.peer.ok(
                "rtc.offer", {"consultation_id": self.consultation_id, "sdp": sdp}
            )
            if trickle:
                for line in re.findall(r"a=(candidate:[^\r\n]*)", offer):
                    await self.peer.ok(
                        "rtc.candidate",
                        {
                            "consultation_id": self.consultation_id,
                            "candidate": {"candidate": line, "sdpMid": "0", "sdpMLineIndex": 0},
                        },
                    )
                await self.peer.ok(
                    "rtc.candidate", {"consultation_id": self.consultation_id, "candidate": None}
                )
            return str(ack["sdp"])

        await self.media.negotiate(exchange)
        self._answering = asyncio.create_task(self._answer_offers())

    async def _answer_offers(self) -> None:
        while True:
            offer = await self.peer.next("rtc.offer", within_s=3600)
            answer = await self.media.answer_offer(offer["sdp"])
            await self.peer.ok(
                "rtc.answer", {"consultation_id": self.consultation_id, "sdp": answer}
            )

    async def close(self) -> None:
        if self._answering is not None:
            self._answering.cancel()
            await asyncio.gather(self._answering, return_exceptions=True)
        await self.media.close()


async def test_consultation_media_over_socketio(cast: Cast, running: RunningServer) -> None:
    consultation_id, outlet, doctor = await active_consultation(cast)
    outlet_media = MediaClient(outlet, ClientPeer("outlet-7", rgb=RED), consultation_id)
    doctor_media = MediaClient(doctor, ClientPeer("dr-li", rgb=GREEN), consultation_id)
    try:
        await outlet_media.start(trickle=True)
        await doctor_media.start()
        seen_by_doctor = await doctor_media.media.wait_for("outlet-7", "video")
        seen_by_outlet = await outlet_media.media.wait_for("dr-li", "video")
        assert close_to(mean_rgb(seen_by_doctor.frames[-1]), RED)
        assert close_to(mean_rgb(seen_by_outlet.frames[-1]), GREEN)

        tracks = await doctor.next("rtc.tracks", lambda p: len(p["tracks"]) == 2)
        assert {t["track_id"] for t in tracks["tracks"]} == {
            "outlet-7:camera",
            "outlet-7:microphone",
        }
        assert all(t["participant_id"] == "outlet-7" and t["mid"] for t in tracks["tracks"])

        await outlet.ok(
            "rtc.media_state",
            {"consultation_id": consultation_id, "source": "camera", "muted": True},
        )
        state = await doctor.next("rtc.media_state")
        assert state == {
            "consultation_id": consultation_id,
            "participant_id": "outlet-7",
            "source": "camera",
            "muted": True,
        }
        assert (
            await outlet.refused(
                "rtc.media_state",
                {"consultation_id": consultation_id, "source": "screen", "muted": True},
            )
            == "unknown_track"
        )

        stats = await doctor.next("rtc.stats", within_s=10)
        assert {p["participant_id"] for p in stats["participants"]} == {"outlet-7", "dr-li"}
        assert set(stats["participants"][0]) >= {
            "rtt_ms",
            "loss_pct",
            "jitter_ms",
            "inbound_kbps",
            "outbound_kbps",
        }
        assert outlet.none_of("rtc.stats"), "stats go to the clinician only"

        await doctor.ok("rtc.receive_mode", {"consultation_id": consultation_id, "video": False})
        await doctor.ok("rtc.receive_mode", {"consultation_id": consultation_id, "video": True})
    finally:
        await outlet_media.close()
        await doctor_media.close()

    await outlet.ok("consultation.end", {"consultation_id": consultation_id})
    registry = running.app[media_registry_key]
    for _ in range(50):
        if registry.get(consultation_id) is None:
            break
        await asyncio.sleep(0.05)
    assert registry.get(consultation_id) is None, "ending the consultation closes its media"


async def test_bad_rtc_input_gets_clear_errors(cast: Cast) -> None:
    consultation_id, outlet, doctor = await active_consultation(cast)
    base = {"consultation_id": consultation_id}
    assert await outlet.refused("rtc.offer", {**base, "sdp": "v=0\r\nnot sdp"}) == "bad_sdp"
    assert await outlet.refused("rtc.offer", {**base, "sdp": 5}) == "bad_request"
    assert await outlet.refused("rtc.answer", {**base, "sdp": "v=0"}) == "no_media_session"
    assert (
        await outlet.refused(
            "rtc.candidate",
            {**base, "candidate": {"candidate": "candidate:garbage", "sdpMid": "0"}},
        )
        == "bad_candidate"
    )
    media = ClientPeer("outlet-7", rgb=RED)
    try:

        async def bad_source(offer: str) -> str:
            ack = await outlet.call(
                "rtc.offer", {**base, "sdp": offer, "sources": [{"mid": "7", "source": "screen"}]}
            )
            assert ack["error"]["code"] == "unknown_track"
            raise LookupError

        with pytest.raises(LookupError):
            await media.negotiate(bad_source)
    finally:
        await media.close()
    stranger = await cast.outlet("outlet-9")
    assert await stranger.refused("rtc.offer", {**base, "sdp": "v=0"}) in {"forbidden", "not_found"}
    admin = await cast.join(Role.ADMIN, "root")
    assert await admin.refused("rtc.receive_mode", {**base, "video": False}) == "forbidden"
    # The server still negotiates a good offer afterwards.
    good = MediaClient(outlet, ClientPeer("outlet-7", rgb=RED), consultation_id)
    try:
        await good.start()
    finally:
        await good.close()
    del doctor


async def test_leaving_closes_the_participants_media(cast: Cast, running: RunningServer) -> None:
    consultation_id, outlet, doctor = await active_consultation(cast)
    outlet_media = MediaClient(outlet, ClientPeer("outlet-7", rgb=RED), consultation_id)
    doctor_media = MediaClient(doctor, ClientPeer("dr-li", rgb=GREEN), consultation_id)
    try:
        await outlet_media.start()
        await doctor_media.start()
        await doctor_media.media.wait_for("outlet-7", "video")
        router = running.app[media_registry_key].get(consultation_id)
        assert router is not None and router.participant_ids == ["dr-li", "outlet-7"]
        server_peer = router.peer("outlet-7")

        await outlet.ok("consultation.leave", {"consultation_id": consultation_id})
        await doctor.next("rtc.tracks", lambda p: p["tracks"] == [])
        assert router.participant_ids == ["dr-li"]
        assert server_peer.pc.connectionState == "closed"
        assert (
            await outlet.refused(
                "rtc.receive_mode", {"consultation_id": consultation_id, "video": False}
            )
            == "forbidden"
        )
    finally:
        await outlet_media.close()
        await doctor_media.close()


class RecordingEmitter:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, object]]] = []

    async def to_subject(self, subject: str, event: str, payload: dict[str, object]) -> None:
        self.sent.append((subject, event, payload))


async def test_link_state_goes_to_that_participant_only() -> None:
    emitter = RecordingEmitter()
    signals = RtcSignals(emitter)
    await signals.send_link_state(
        "c-1",
        "outlet-1",
        LinkState(video_paused=True, reason="weak_connection", estimate_kbps=92.4),
    )
    await signals.send_link_state(
        "c-1", "outlet-1", LinkState(video_paused=False, reason=None, estimate_kbps=240.0)
    )
    assert emitter.sent == [
        (
            "outlet-1",
            "rtc.link_state",
            {
                "consultation_id": "c-1",
                "video_paused": True,
                "reason": "weak_connection",
                "estimate_kbps": 92.4,
            },
        ),
        (
            "outlet-1",
            "rtc.link_state",
            {
                "consultation_id": "c-1",
                "video_paused": False,
                "reason": None,
                "estimate_kbps": 240.0,
            },
        ),
    ]
