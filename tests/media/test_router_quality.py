"""Weak-network features with real aiortc peers: receive modes, stats, NACK, taps..."""

from __future__ import annotations

import asyncio
from typing import Any

from aiortc.rtp import RtpPacket, is_rtcp

from media.aiortc_adapter import ForwardingSender, inspection
from media.aiortc_adapter.remb import remb_packet
from media.keyframes import may_start_stream
from media.taps import TrackInfo
from tests.media.clients import ClientPeer, close_to, mean_rgb
from tests.media.conftest import Room, media_config

RED, GREEN = (220, 40, 40), (40, 200, 60)


async def frames_in(client: ClientPeer, participant_id: str, kind: str, seconds: float) -> int:
    received = client.by_participant(participant_id, kind)
    assert received is not None
    received.frames.clear()
    await asyncio.sleep(seconds)
    return len(received.frames)


async def test_audio_only_receive_pauses_video_and_resumes(room: Room) -> None:
    await room.join(ClientPeer("outlet-1", rgb=RED, keep_frames=1000))
    doctor = await room.join(ClientPeer("dr-li", rgb=GREEN, keep_frames=1000))
    await doctor.wait_for("outlet-1", "video")
    room.router.set_video_receive("dr-li", False)
    await asyncio.sleep(0.3)  # frames already in flight
    assert await frames_in(doctor, "outlet-1", "video", 1.0) <= 1
    assert await frames_in(doctor, "outlet-1", "audio", 1.0) >= 20  # 50 sent
    room.router.set_video_receive("dr-li", True)
    video = await doctor.wait_for("outlet-1", "video", frames=10, within_s=3.0)
    assert close_to(mean_rgb(video.frames[-1]), RED)


async def test_stats_report_rtt_loss_jitter_and_bitrate(room: Room) -> None:
    await room.join(ClientPeer("outlet-1", rgb=RED))
    doctor = await room.join(ClientPeer("dr-li", rgb=GREEN))
    await doctor.wait_for("outlet-1", "video")
    for _ in range(80):
        latest = {s.participant_id: s for s in (room.signals.stats or [[]])[-1]}
        if len(latest) == 2 and all(s.rtt_ms is not None for s in latest.values()):
            break
        await asyncio.sleep(0.1)
    assert set(latest) == {"outlet-1", "dr-li"}
    for figures in latest.values():
        assert figures.rtt_ms is not None and 0 <= figures.rtt_ms < 200
        assert figures.inbound_kbps > 50 and figures.outbound_kbps > 50
        assert 0 <= figures.loss_pct <= 100 and figures.jitter_ms >= 0


async def test_a_subscribers_low_estimate_does_not_reach_the_publisher(room: Room) -> None:
    outlet = await room.join(ClientPeer("outlet-1", rgb=RED))
    doctor = await room.join(ClientPeer("dr-li", rgb=GREEN))
    await doctor.wait_for("outlet-1", "video")
    server_sender = next(
        t.sender
        for t in room.router.peer("dr-li").pc.getTransceivers()
        if isinstance(t.sender, ForwardingSender)
        and t.sender.kind == "video"
        and t.sender.codec is not None
    )
    doctor_receiver = next(
        t.receiver
        for t in doctor.pc.getTransceivers()
        if t.receiver.track and t.receiver.track.id == "outlet-1:camera"
    )
    for _ in range(5):
        await inspection.send_rtcp(
            doctor_receiver,
            remb_packet(1234, 30_000, [inspection.sender_ssrc(server_sender)]),
        )
        await asyncio.sleep(0.1)
    assert server_sender.remb_bps == 30_000  # recorded for the console
    outlet_video = next(s for s in outlet.pc.getSenders() if s.kind == "video")
    encoder = inspection.sender_encoder(outlet_video)
    assert encoder.target_bitrate > 200_000  # the publisher was not throttled to it


def drop_every(sender: Any, nth: int, dropped: list[int]) -> None:
    """Make the sender lose every ``nth`` first transmission of its packets."""
    ssrc = inspection.sender_ssrc(sender)
    count = 0

    def lossy(data: bytes) -> bool:
        nonlocal count
        if is_rtcp(data):
            return False
        packet = RtpPacket.parse(data)
        if packet.ssrc != ssrc:  # audio, or RTX retransmissions
            return False
        count += 1
        if count % nth:
            return False
        dropped.append(packet.sequence_number)
        return True

    inspection.lose_rtp_out(sender, lossy)


async def test_nack_recovers_losses_on_both_legs(room: Room) -> None:
    retransmitted: list[tuple[str, int]] = []

    def counting(sender: Any, sequence_number: int) -> None:
        retransmitted.append(
            ("server" if isinstance(sender, ForwardingSender) else "client", sequence_number)
        )

    stop = inspection.observe_retransmissions(counting)
    try:
        await nack_recovers_losses_on_both_legs(room, retransmitted)
    finally:
        stop()


async def nack_recovers_losses_on_both_legs(
    room: Room, retransmitted: list[tuple[str, int]]
) -> None:
    outlet = await room.join(ClientPeer("outlet-1", rgb=RED))
    doctor = await room.join(ClientPeer("dr-li", rgb=GREEN))
    await doctor.wait_for("outlet-1", "video")
    upstream: list[int] = []
    downstream: list[int] = []
    drop_every(next(s for s in outlet.pc.getSenders() if s.kind == "video"), 25, upstream)
    drop_every(
        next(
            s
            for s in room.router.peer("dr-li").pc.getSenders()
            if isinstance(s, ForwardingSender) and s.kind == "video" and s.codec
        ),
        25,
        downstream,
    )
    await asyncio.sleep(2.5)
    assert upstream and downstream
    client_fixed = {seq for who, seq in retransmitted if who == "client"}
    server_fixed = {seq for who, seq in retransmitted if who == "server"}
    assert set(upstream) & client_fixed, "the server's NACKs reached the publisher"
    assert set(downstream) & server_fixed, "the subscriber's NACKs were served from server history"
    received = doctor.by_participant("outlet-1", "video")
    assert received is not None
    received.frames.clear()
    video = await doctor.wait_for("outlet-1", "video", frames=20)
    assert close_to(mean_rgb(video.frames[-1]), RED)


class RecordingTap:
    def __init__(self) -> None:
        self.packets: dict[str, int] = {}
        self.keyframes: dict[str, int] = {}
        self.ended: list[str] = []
        self.infos: dict[str, TrackInfo] = {}

    def on_rtp(self, track: TrackInfo, packet: RtpPacket, payload: bytes) -> None:
        assert isinstance(payload, bytes)
        self.infos[track.track_id] = track
        self.packets[track.track_id] = self.packets.get(track.track_id, 0) + 1
        if track.kind == "video" and may_start_stream(track.codec_mime, packet.payload):
            self.keyframes[track.track_id] = self.keyframes.get(track.track_id, 0) + 1

    def on_track_ended(self, track: TrackInfo) -> None:
        self.ended.append(track.track_id)


async def test_taps_see_every_track_and_its_end(room: Room) -> None:
    tap = RecordingTap()
    room.router.add_tap(tap)
    outlet = await room.join(ClientPeer("outlet-1", rgb=RED))
    doctor = await room.join(ClientPeer("dr-li", rgb=GREEN))
    await doctor.wait_for("outlet-1", "video")
    await asyncio.sleep(0.5)
    assert set(tap.packets) == {
        "outlet-1:camera",
        "outlet-1:microphone",
        "dr-li:camera",
        "dr-li:microphone",
    }
    info = tap.infos["outlet-1:camera"]
    assert (info.kind, info.source, info.codec_mime, info.clock_rate) == (
        "video",
        "camera",
        "video/VP8",
        90000,
    )
    assert tap.infos["dr-li:microphone"].codec_mime == "audio/opus"
    before = tap.keyframes.get("dr-li:camera", 0)
    await asyncio.sleep(0.5)
    room.router.request_keyframes()
    await asyncio.sleep(0.5)
    assert tap.keyframes.get("dr-li:camera", 0) > before
    await room.leave(outlet)
    assert sorted(tap.ended) == ["outlet-1:camera", "outlet-1:microphone"]
    room.router.remove_tap(tap)


async def test_screen_share_is_a_second_video_track() -> None:
    from tests.media.conftest import Room as Harness

    harness = Harness(media_config())
    try:
        sharer = ClientPeer("dr-li", rgb=GREEN)
        from tests.media.clients import ColourTrack

        sharer.pc.addTrack(ColourTrack((240, 240, 240)))
        viewer = await harness.join(ClientPeer("outlet-1", rgb=RED))
        await harness.join(sharer, {"0": "microphone", "1": "camera", "2": "screen"})
        camera = await viewer.wait_for("dr-li", "video")
        screen = next(r for r in viewer.received.values() if r.track.id == "dr-li:screen")
        for _ in range(100):
            if screen.frames:
                break
            await asyncio.sleep(0.05)
        assert close_to(mean_rgb(camera.frames[-1]), GREEN)
        assert close_to(mean_rgb(screen.frames[-1]), (240, 240, 240))
        sources = {t["track_id"]: t["source"] for t in viewer.tracks_events[-1]}
        assert sources["dr-li:screen"] == "screen"
    finally:
        await harness.close()


async def test_no_shared_codec_falls_back_to_transcoding_for_that_subscriber() -> None:
    from tests.media.conftest import Room as Harness

    harness = Harness(media_config())
    try:
        await harness.join(ClientPeer("outlet-1", rgb=RED, publish_codec="video/H264"))
        vp8_only = await harness.join(ClientPeer("dr-li", rgb=GREEN, refuse_codec="H264"))
        video = await vp8_only.wait_for("outlet-1", "video", within_s=20)
        assert close_to(mean_rgb(video.frames[-1]), RED)
        receiver = next(
            t.receiver
            for t in vp8_only.pc.getTransceivers()
            if t.receiver.track and t.receiver.track.id == "outlet-1:camera"
        )
        assert inspection.negotiated_codecs(receiver)
        assert {c.mimeType for c in inspection.negotiated_codecs(receiver)} <= {
            "video/VP8",
            "video/rtx",
        }
        counted = harness.registry.get_sample_value(
            "teleconsult_media_transcoding_subscriptions_total", {"kind": "video"}
        )
        assert counted == 1
    finally:
        await harness.close()
