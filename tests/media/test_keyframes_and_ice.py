"""Keyframe detection on real encoder output, and ICE address control."""

from __future__ import annotations

import fractions
import re

import av
import numpy as np
from aiortc import RTCPeerConnection, RTCRtpSender
from aiortc.codecs import get_encoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from media.aiortc_adapter import announce_address, restrict_host_addresses
from media.keyframes import may_start_stream
from tests.media.clients import ColourTrack


def frames(count: int) -> list[av.VideoFrame]:
    out = []
    for index in range(count):
        image = np.full((240, 320, 3), (index * 20) % 255, dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = index * 3000
        frame.time_base = fractions.Fraction(1, 90000)
        out.append(frame)
    return out


def encoded(mime: str, clock: int = 90000, **parameters: object) -> list[list[bytes]]:
    encoder = get_encoder(
        RTCRtpCodecParameters(
            mimeType=mime, clockRate=clock, payloadType=96, parameters=dict(parameters)
        )
    )
    return [encoder.encode(frame, force_keyframe=False)[0] for frame in frames(4)]


def test_vp8_keyframe_starts_only_at_the_first_packet_of_a_keyframe() -> None:
    payloads = encoded("video/VP8")
    assert may_start_stream("video/VP8", payloads[0][0])
    assert not any(may_start_stream("video/VP8", p) for p in payloads[0][1:])
    assert not any(may_start_stream("video/VP8", p) for frame in payloads[1:] for p in frame)


def test_h264_idr_is_recognised() -> None:
    payloads = encoded("video/H264", **{"packetization-mode": "1", "profile-level-id": "42e01f"})
    assert any(may_start_stream("video/H264", p) for p in payloads[0])
    assert not any(may_start_stream("video/H264", p) for frame in payloads[1:] for p in frame)


def test_audio_packets_always_start() -> None:
    assert may_start_stream("audio/opus", b"\x01\x02")
    assert not may_start_stream("video/VP8", b"")


async def test_host_candidates_only_on_configured_addresses() -> None:
    pc = RTCPeerConnection()
    try:
        pc.addTrack(ColourTrack((1, 2, 3)))
        restrict_host_addresses(pc, ("127.0.0.1",))
        await pc.setLocalDescription(await pc.createOffer())
        hosts = re.findall(
            r"a=candidate:\S+ \d+ udp \d+ (\S+) \d+ typ host", pc.localDescription.sdp
        )
        assert hosts == ["127.0.0.1"]
        announced = announce_address(pc.localDescription.sdp, "203.0.113.7")
        assert re.findall(r"a=candidate:\S+ \d+ udp \d+ (\S+) \d+ typ host", announced) == [
            "203.0.113.7"
        ]
        assert "c=IN IP4 203.0.113.7" in announced and "127.0.0.1" not in announced
    finally:
        await pc.close()


def test_codec_capabilities_include_vp8_h264_opus() -> None:
    video = {c.mimeType for c in RTCRtpSender.getCapabilities("video").codecs}
    assert {"video/VP8", "video/H264"} <= video


async def test_udp_port_range_binds_inside_it_and_media_flows() -> None:
    from tests.media.clients import ClientPeer, mean_rgb
    from tests.media.conftest import Room, media_config

    room = Room(media_config(udp_ports=(41000, 41009)))
    try:
        await room.join(ClientPeer("outlet-1", rgb=(220, 40, 40)))
        doctor = await room.join(ClientPeer("dr-li"))
        for participant in ("outlet-1", "dr-li"):
            sdp = room.router.peer(participant).pc.localDescription.sdp
            ports = {int(p) for p in re.findall(r"a=candidate:\S+ \d+ udp \d+ \S+ (\d+) typ", sdp)}
            assert ports and all(41000 <= p <= 41009 for p in ports)
        video = await doctor.wait_for("outlet-1", "video")
        red, green, blue = mean_rgb(video.frames[-1])
        assert red > 170 and green < 90 and blue < 90
    finally:
        await room.close()
