"""Room behaviour with real aiortc peers: no codec on the server, groups, late joiners, rejoin."""

from __future__ import annotations

import asyncio
import re
import sys
import threading
from typing import Any

import pytest
from aiortc import rtcrtpreceiver, rtcrtpsender

from media.aiortc_adapter import ForwardingReceiver, inspection
from media.errors import BadSdp, NegotiationInProgress, UnknownTrack
from tests.media.clients import ClientPeer, close_to, dominant_hz, mean_rgb
from tests.media.conftest import Room

RED, GREEN, BLUE = (220, 40, 40), (40, 200, 60), (30, 60, 220)


class CodecSpy:
    """Records every decoder and encoder aiortc creates, and which receiver/sender it serves."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.decoders: list[Any] = []  # the asyncio queue of the track each decoder feeds
        self.encoders: list[Any] = []  # the sender that encodes
        real_decoder, real_encoder = rtcrtpreceiver.get_decoder, rtcrtpsender.get_encoder

        def get_decoder(codec: Any) -> Any:
            owner = sys._getframe(1).f_locals.get("output_q")
            self.decoders.append(owner)
            return real_decoder(codec)

        def get_encoder(codec: Any) -> Any:
            self.encoders.append(sys._getframe(1).f_locals.get("self"))
            return real_encoder(codec)

        monkeypatch.setattr(rtcrtpreceiver, "get_decoder", get_decoder)
        monkeypatch.setattr(rtcrtpsender, "get_encoder", get_encoder)


async def test_three_party_room_forwards_without_any_codec_on_the_server(
    room: Room, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = CodecSpy(monkeypatch)
    outlet = await room.join(ClientPeer("outlet-1", rgb=RED, hz=440))
    doctor = await room.join(ClientPeer("dr-li", rgb=GREEN, hz=1000))
    parent = await room.join(ClientPeer("parent-1", rgb=BLUE, hz=700))
    clients = {
        "outlet-1": (outlet, RED, 440),
        "dr-li": (doctor, GREEN, 1000),
        "parent-1": (parent, BLUE, 700),
    }

    for viewer_id, (viewer, _, _) in clients.items():
        for sender_id, (_, colour, hz) in clients.items():
            if sender_id == viewer_id:
                continue
            video = await viewer.wait_for(sender_id, "video")
            assert close_to(mean_rgb(video.frames[-1]), colour), (viewer_id, sender_id)
            audio = await viewer.wait_for(sender_id, "audio", frames=25)
            assert abs(dominant_hz(audio.frames[-20:]) - hz) < 30, (viewer_id, sender_id)

    server_peers = [room.router.peer(pid).pc for pid in clients]
    server_queues = {
        id(inspection.frame_queue(t.receiver.track))
        for pc in server_peers
        for t in pc.getTransceivers()
        if t.receiver.track is not None
    }
    server_senders = {id(t.sender) for pc in server_peers for t in pc.getTransceivers()}
    client_queues = {
        id(inspection.frame_queue(r.track))
        for c, _, _ in clients.values()
        for r in c.received.values()
    }
    client_senders = {id(s) for c, _, _ in clients.values() for s in c.pc.getSenders()}

    # The spy sees every client codec: each client decodes 2 others x (audio + video)...
    assert sum(id(q) in client_queues for q in spy.decoders) == 12
    assert sum(id(s) in client_senders for s in spy.encoders) == 6
    # ...and none on the server.
    assert not [q for q in spy.decoders if id(q) in server_queues]
    assert not [s for s in spy.encoders if id(s) in server_senders]
    assert len(spy.decoders) == 12 and len(spy.encoders) == 6
    for pc in server_peers:
        for transceiver in pc.getTransceivers():
            receiver = transceiver.receiver
            assert isinstance(receiver, ForwardingReceiver)
            assert inspection.decoder_thread(receiver) is None
    assert not [
        t
        for t in threading.enumerate()
        if t.name.endswith("-decoder") and t not in _client_decoder_threads(clients)
    ]


def _client_decoder_threads(clients: dict[str, Any]) -> set[threading.Thread]:
    threads = set()
    for client, _, _ in clients.values():
        for transceiver in client.pc.getTransceivers():
            thread = inspection.decoder_thread(transceiver.receiver)
            if thread is not None:
                threads.add(thread)
    return threads


async def test_late_joiner_gets_video_within_a_keyframe_interval(room: Room) -> None:
    outlet = await room.join(ClientPeer("outlet-1", rgb=RED))
    doctor = await room.join(ClientPeer("dr-li", rgb=GREEN))
    await doctor.wait_for("outlet-1", "video")
    await asyncio.sleep(1.0)  # aiortc's encoder sends keyframes only on request: none is due now

    loop = asyncio.get_running_loop()
    joined_at = loop.time()
    parent = await room.join(ClientPeer("parent-1", rgb=BLUE))
    video = await parent.wait_for("outlet-1", "video", frames=1, within_s=2.0)
    assert video.first_at is not None and video.first_at - joined_at < 2.0
    assert close_to(mean_rgb(video.frames[-1]), RED)
    await outlet.wait_for("parent-1", "video", frames=1, within_s=2.0)


async def test_leave_and_rejoin_restores_media_for_everyone(room: Room) -> None:
    outlet = await room.join(ClientPeer("outlet-1", rgb=RED))
    doctor = await room.join(ClientPeer("dr-li", rgb=GREEN))
    await doctor.wait_for("outlet-1", "video")

    await room.leave(outlet)
    assert [t["track_id"] for t in doctor.tracks_events[-1]] == []
    renegotiations = len(doctor.tracks_events)

    back = await room.join(ClientPeer("outlet-1", rgb=BLUE))
    for received in doctor.received.values():
        received.frames.clear()
    video = await doctor.wait_for("outlet-1", "video", frames=3)
    assert close_to(mean_rgb(video.frames[-1]), BLUE)  # the returning participant's new picture
    assert len(doctor.tracks_events) > renegotiations
    assert {t["track_id"] for t in doctor.tracks_events[-1]} == {
        "outlet-1:camera",
        "outlet-1:microphone",
    }
    await back.wait_for("dr-li", "video")


async def test_reconnect_with_new_session_replaces_the_peer(room: Room) -> None:
    await room.join(ClientPeer("outlet-1", rgb=RED))
    doctor = await room.join(ClientPeer("dr-li", rgb=GREEN))
    old = room.router.peer("dr-li")
    await room.signals.clients["dr-li"].close()
    again = await room.join(ClientPeer("dr-li", rgb=GREEN))
    assert room.router.peer("dr-li") is not old and old.pc.connectionState == "closed"
    video = await again.wait_for("outlet-1", "video")
    assert close_to(mean_rgb(video.frames[-1]), RED)
    assert doctor.pc.connectionState == "closed"


def _remote_ports(peer: Any) -> set[int]:
    transport = peer.pc.getTransceivers()[0].sender.transport.transport
    return {candidate.port for candidate in transport.getRemoteCandidates()}


def _trickling(offer: str) -> str:
    """The offer as a trickling browser sends it: more candidates may follow."""
    return offer.replace("a=end-of-candidates\r\n", "")


async def test_a_new_ice_generations_candidate_waits_for_its_offer(room: Room) -> None:
    await room.join(ClientPeer("outlet-1", rgb=RED))
    first = ClientPeer("dr-li", rgb=GREEN)
    room.signals.clients["dr-li"] = first

    async def first_answer(sdp: str) -> None:
        await room.router.handle_answer("dr-li", sdp)

    first.answer_to = first_answer
    await first.negotiate(lambda offer: room.router.handle_offer("dr-li", _trickling(offer)))
    old = room.router.peer("dr-li")
    old_ports = _remote_ports(old)
    await room.signals.clients["dr-li"].close()
    again = ClientPeer("dr-li", rgb=GREEN)
    room.signals.clients["dr-li"] = again
    trickled_port = 0

    async def answer(sdp: str) -> None:
        await room.router.handle_answer("dr-li", sdp)

    async def trickle_then_offer(offer: str) -> str:
        nonlocal trickled_port
        ufrag = re.search(r"a=ice-ufrag:(\S+)", offer)
        line = re.search(r"a=candidate:(\S+ \d+ udp \d+ \S+) (\d+)( typ host.*)", offer)
        assert ufrag and line
        # The new connection trickles a candidate before its offer reaches the server.
        trickled_port = int(line.group(2)) + 1
        candidate = f"candidate:{line.group(1)} {trickled_port} {line.group(3).strip()}"
        await room.router.add_candidate(
            "dr-li", {"candidate": candidate, "sdpMid": "0", "usernameFragment": ufrag.group(1)}
        )
        assert _remote_ports(old) == old_ports  # not given to the session it replaces
        return await room.router.handle_offer("dr-li", _trickling(offer), None)

    again.answer_to = answer
    await again.negotiate(trickle_then_offer)
    assert room.router.peer("dr-li") is not old
    assert trickled_port in _remote_ports(room.router.peer("dr-li"))
    video = await again.wait_for("outlet-1", "video")
    assert close_to(mean_rgb(video.frames[-1]), RED)


async def test_bad_sdp_and_unknown_tracks_get_clear_errors(room: Room) -> None:
    with pytest.raises(BadSdp):
        await room.router.handle_offer("outlet-1", "v=0\r\nthis is not sdp", None)
    with pytest.raises(BadSdp):
        await room.router.handle_offer("outlet-1", "", None)
    client = ClientPeer("outlet-1", rgb=RED)

    async def bad_source(offer: str) -> str:
        return await room.router.handle_offer("outlet-1", offer, {"9": "camera"})

    with pytest.raises(UnknownTrack):
        await client.negotiate(bad_source)

    async def wrong_kind(offer: str) -> str:
        return await room.router.handle_offer("outlet-1", offer, {"0": "camera"})

    client2 = ClientPeer("outlet-1", rgb=RED)
    with pytest.raises(UnknownTrack):
        await client2.negotiate(wrong_kind)
    await client.close()
    await client2.close()
    with pytest.raises(UnknownTrack):
        room.router.set_muted("outlet-1", "screen", True)

    # The router still serves a good offer afterwards.
    outlet = await room.join(ClientPeer("outlet-1", rgb=RED))
    doctor = await room.join(ClientPeer("dr-li", rgb=GREEN))
    await doctor.wait_for("outlet-1", "video")
    with pytest.raises(BadSdp):
        await room.router.handle_answer("dr-li", "garbage")
    del outlet


async def test_client_offer_during_pending_server_offer_is_refused(room: Room) -> None:
    await room.join(ClientPeer("outlet-1", rgb=RED))
    quiet = ClientPeer("dr-li", rgb=GREEN)
    quiet.on_server_offer = lambda sdp: None  # type: ignore[method-assign]
    await room.join(quiet)
    outlet_peer = room.router.peer("outlet-1")
    for _ in range(50):
        if outlet_peer.pc.signalingState == "have-local-offer":
            break
        await asyncio.sleep(0.02)
    assert outlet_peer.pc.signalingState == "have-local-offer"  # the server offer waits
    with pytest.raises(NegotiationInProgress):
        await room.router.handle_offer("outlet-1", outlet_peer.pc.remoteDescription.sdp, None)
