"""The transcoding fallback's decoder queue stays bounded: real VP8 and Opus frames from aiortc's
encoders go through a real decoder that is held back until the test lets it run."""

from __future__ import annotations

import asyncio
import fractions
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket
from av import AudioFrame, VideoFrame

from media.aiortc_adapter import codec_data
from media.transcode import RelayedTrack, TranscodeDecoder, TranscodeSource
from rooms.tasks import within

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90_000, payloadType=96)
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48_000, channels=2, payloadType=111)


class HeldDecoder:
    """Wraps the real decode so frames wait until ``release`` (a decoder that fell behind)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.gate = threading.Event()
        self.decoded: list[int] = []
        real = TranscodeDecoder.decode

        def held(assembler: TranscodeDecoder, encoded: Any) -> list[Any]:
            self.gate.wait(10)
            self.decoded.append(encoded.timestamp)
            return real(assembler, encoded)

        monkeypatch.setattr(TranscodeDecoder, "decode", held)

    def release(self) -> None:
        self.gate.set()


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldDecoder]:
    decoder = HeldDecoder(monkeypatch)
    yield decoder
    decoder.release()


class Vp8Stream:
    """Encodes numbered test frames into depayloaded RTP packets, as the receiver hands them on."""

    def __init__(self) -> None:
        self._encoder = Vp8Encoder()
        self._sequence = 1_000

    def frame(self, index: int, keyframe: bool = False) -> list[tuple[RtpPacket, bool]]:
        picture = VideoFrame(width=320, height=240, format="yuv420p")
        picture.pts = index * 3_000
        picture.time_base = fractions.Fraction(1, 90_000)
        payloads, timestamp = self._encoder.encode(picture, force_keyframe=keyframe)
        packets = []
        for i, payload in enumerate(payloads):
            packet = RtpPacket(
                payload_type=96,
                sequence_number=self._sequence,
                timestamp=timestamp,
                marker=i == len(payloads) - 1,
                payload=payload,
            )
            codec_data(packet, VP8)
            self._sequence += 1
            packets.append((packet, keyframe and i == 0))
        return packets


def feed(source: TranscodeSource, packets: list[tuple[RtpPacket, bool]]) -> bool:
    """Whether any packet made the source ask for a keyframe."""
    asked = [source.feed(packet, keyframe) for packet, keyframe in packets]
    return any(asked)


async def test_a_video_decoder_behind_skips_to_the_next_keyframe(held: HeldDecoder) -> None:
    source = TranscodeSource("p:camera", "video", VP8)
    output = RelayedTrack("video")
    source.subscribe(output)
    stream = Vp8Stream()
    frames = [stream.frame(i, keyframe=i in (0, 10)) for i in range(16)]
    try:
        # A frame leaves the jitter buffer when the next one starts: 0..8 complete here.
        asked = [feed(source, frames[i]) for i in range(10)]
        # 0 is being decoded, 1 waits; 2..8 find the queue full and are dropped, and since a
        # decoder cannot skip a frame, the source asks for a keyframe instead.
        assert asked[:3] == [False, False, False]
        assert all(asked[3:])
        assert source.dropped_frames == 7
        timestamps = [frame[0][0].timestamp for frame in frames]
        assert held.decoded in ([], [timestamps[0]])
        held.release()
        for _ in range(2):
            picture = await within(output.recv(), 10)
            assert (picture.width, picture.height) == (320, 240)
        assert feed(source, frames[10])  # completes 9: still waiting for the keyframe
        assert source.dropped_frames == 8
        for i in range(11, 16):  # completes 10..14, decoded one by one
            assert not feed(source, frames[i])
            picture = await within(output.recv(), 10)
            assert (picture.width, picture.height) == (320, 240)
        assert held.decoded == [timestamps[i] for i in (0, 1, 10, 11, 12, 13, 14)]
    finally:
        source.close()


async def test_an_audio_decoder_behind_drops_frames_without_a_keyframe(
    held: HeldDecoder,
) -> None:
    source = TranscodeSource("p:microphone", "audio", OPUS)
    output = RelayedTrack("audio")
    source.subscribe(output)
    encoder = OpusEncoder()
    asked = []
    try:
        for index in range(60):
            frame = AudioFrame(format="s16", layout="stereo", samples=960)
            for plane in frame.planes:
                plane.update(bytes(plane.buffer_size))
            frame.sample_rate = 48_000
            frame.pts = index * 960
            frame.time_base = fractions.Fraction(1, 48_000)
            payloads, timestamp = encoder.encode(frame)
            packet = RtpPacket(
                payload_type=111, sequence_number=index, timestamp=timestamp, payload=payloads[0]
            )
            codec_data(packet, OPUS)
            asked.append(source.feed(packet, False))
        assert not any(asked)
        assert source.dropped_frames > 40
        held.release()
        picture = await within(output.recv(), 10)
        assert picture.sample_rate == 48_000
        await asyncio.sleep(0.2)
        assert len(held.decoded) + source.dropped_frames <= 60
        assert len(held.decoded) <= 5
    finally:
        source.close()
