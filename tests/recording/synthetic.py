"""Real VP8 and Opus packets for recorder tests: PyAV-encoded media, packetised like RTP."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiortc.rtp import RtpPacket

from media.taps import TrackInfo
from recording.files import DecryptingReader
from recording.keys import Keyring

FPS = 30
VIDEO_RATE = 90000
AUDIO_RATE = 48000
AUDIO_SAMPLES = 960
MTU_PAYLOAD = 900
KEYRING = Keyring.of([], bytes(range(32)))  # recordings are always encrypted: a fixed test key


@dataclass(frozen=True)
class Sent:
    """One RTP packet as the tap sees it: arrival time, packet, depayloaded codec bytes."""

    at: float
    packet: RtpPacket
    payload: bytes


def video_track(participant: str = "p1") -> TrackInfo:
    return TrackInfo(
        f"{participant}:camera", participant, "video", "camera", "video/VP8", VIDEO_RATE
    )


def audio_track(participant: str = "p1") -> TrackInfo:
    return TrackInfo(
        f"{participant}:microphone", participant, "audio", "microphone", "audio/opus", AUDIO_RATE
    )


def colour_frames(
    rgb: tuple[int, int, int],
    count: int,
    size: tuple[int, int] = (320, 240),
    keyframe_every: int = 30,
) -> list[bytes]:
    """``count`` VP8 frames of one solid colour (a keyframe every ``keyframe_every``)."""
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height = size
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = Fraction(1, FPS)
    encoder.bit_rate = 300_000
    encoder.gop_size = keyframe_every
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    image = np.full((size[1], size[0], 3), rgb, dtype=np.uint8)
    frames: list[bytes] = []
    for index in range(count):
        noise = image.copy()
        noise[index % size[1], :, :] = 255 - noise[index % size[1], :, :]  # some motion
        frame = av.VideoFrame.from_ndarray(noise, format="rgb24").reformat(format="yuv420p")
        frame.pts = index
        frame.time_base = Fraction(1, FPS)
        frames.extend(bytes(packet) for packet in encoder.encode(frame))
    frames.extend(bytes(packet) for packet in encoder.encode(None))
    return frames[:count]


def tone_frames(hz: float, count: int) -> list[bytes]:
    """``count`` 20 ms Opus frames of a sine tone."""
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate = AUDIO_RATE
    encoder.layout = "stereo"
    encoder.format = "s16"
    encoder.time_base = Fraction(1, AUDIO_RATE)
    encoder.bit_rate = 64000
    out: list[bytes] = []
    for index in range(count + 2):
        t = (np.arange(AUDIO_SAMPLES) + index * AUDIO_SAMPLES) / AUDIO_RATE
        mono = (np.sin(2 * math.pi * hz * t) * 12000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(
            np.repeat(mono, 2).reshape(1, -1), format="s16", layout="stereo"
        )
        frame.sample_rate = AUDIO_RATE
        frame.pts = index * AUDIO_SAMPLES
        frame.time_base = Fraction(1, AUDIO_RATE)
        out.extend(bytes(packet) for packet in encoder.encode(frame))
    return out[:count]


def vp8_packets(
    frames: list[bytes],
    ssrc: int = 1111,
    first_seq: int = 65500,
    first_ts: int = 4294967000 - 90000,
    start_at: float = 0.0,
    mtu: int = MTU_PAYLOAD,
) -> Iterator[Sent]:
    """RFC 7741 packetisation: fragments per frame, S bit on the first, marker on the last."""
    sequence = first_seq
    for index, data in enumerate(frames):
        timestamp = (first_ts + index * VIDEO_RATE // FPS) & 0xFFFFFFFF
        chunks = [data[i : i + mtu] for i in range(0, len(data), mtu)] or [b""]
        for number, chunk in enumerate(chunks):
            descriptor = b"\x10" if number == 0 else b"\x00"
            packet = RtpPacket(
                payload_type=96,
                marker=number == len(chunks) - 1,
                sequence_number=sequence & 0xFFFF,
                timestamp=timestamp,
                ssrc=ssrc,
                payload=descriptor + chunk,
            )
            sequence += 1
            yield Sent(start_at + index / FPS, packet, chunk)


def opus_packets(
    frames: list[bytes],
    ssrc: int = 2222,
    first_seq: int = 100,
    first_ts: int = 123456,
    start_at: float = 0.0,
) -> Iterator[Sent]:
    for index, data in enumerate(frames):
        packet = RtpPacket(
            payload_type=111,
            marker=index == 0,
            sequence_number=(first_seq + index) & 0xFFFF,
            timestamp=(first_ts + index * AUDIO_SAMPLES) & 0xFFFFFFFF,
            ssrc=ssrc,
            payload=data,
        )
        yield Sent(start_at + index * AUDIO_SAMPLES / AUDIO_RATE, packet, data)


class FakeClock:
    """A controllable monotonic clock (the recorder takes wall-clock gaps from it on rebase)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@contextmanager
def open_recording(
    path: str | Path, keyring: Keyring = KEYRING, allow_unfinished: bool = False
) -> Iterator[Any]:
    """A PyAV container reading an encrypted recording file through in-memory decryption."""
    with (
        DecryptingReader(Path(path), keyring, allow_unfinished) as reader,
        av.open(reader) as container,
    ):
        yield container


def decoded_video(path: str | Path, allow_unfinished: bool = False) -> list[av.VideoFrame]:
    with open_recording(path, allow_unfinished=allow_unfinished) as container:
        return list(container.decode(video=0))


def mean_rgb(frame: av.VideoFrame) -> tuple[int, int, int]:
    array = frame.to_ndarray(format="rgb24")
    h, w, _ = array.shape
    centre = array[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]
    r, g, b = (int(v) for v in centre.reshape(-1, 3).mean(axis=0))
    return r, g, b


def participant_media(
    participant: str, rgb: tuple[int, int, int], hz: float, seconds: float, start_at: float = 0.0
) -> list[tuple[float, TrackInfo, Sent]]:
    """A participant's camera and microphone packets, timed from ``start_at``."""
    video = vp8_packets(
        colour_frames(rgb, int(seconds * FPS)), ssrc=hash(participant) & 0xFFFF, start_at=start_at
    )
    audio = opus_packets(
        tone_frames(hz, int(seconds * 50)), ssrc=(hash(participant) & 0xFFFF) + 1, start_at=start_at
    )
    vtrack, atrack = video_track(participant), audio_track(participant)
    return [(s.at, vtrack, s) for s in video] + [(s.at, atrack, s) for s in audio]


def feed_all(recorder: Any, clock: FakeClock, timed: list[tuple[float, TrackInfo, Sent]]) -> None:
    """Deliver packets to a tap in time order, moving the clock along."""
    for at, track, sent in sorted(timed, key=lambda item: (item[0], item[1].track_id)):
        clock.now = at
        recorder.on_rtp(track, sent.packet, sent.payload)


def h264_frames(
    rgb: tuple[int, int, int], count: int, size: tuple[int, int] = (320, 240)
) -> list[bytes]:
    """``count`` H.264 access units (Annex-B, baseline, SPS/PPS in band before each IDR)."""
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height = size
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = Fraction(1, FPS)
    encoder.gop_size = 30
    encoder.options = {
        "profile": "baseline",
        "preset": "ultrafast",
        "tune": "zerolatency",
        "x264-params": "repeat-headers=1",
    }
    image = np.full((size[1], size[0], 3), rgb, dtype=np.uint8)
    out: list[bytes] = []
    for index in range(count):
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        frame.pts, frame.time_base = index, Fraction(1, FPS)
        out.extend(bytes(packet) for packet in encoder.encode(frame))
    out.extend(bytes(packet) for packet in encoder.encode(None))
    return out[:count]


def h264_packets(frames: list[bytes], ssrc: int = 3333, mtu: int = 300) -> Iterator[Sent]:
    """RFC 6184 packetisation (single NAL units and FU-A), payloads as a depayloader gives them.

    A depayloaded payload is an Annex-B start code + NAL unit, or an FU-A fragment continuing one.
    """
    from media.bitstream import annexb_nal_units

    sequence = 0
    for index, data in enumerate(frames):
        units = annexb_nal_units(data)
        packets: list[tuple[bytes, bytes]] = []  # (RTP payload, depayloaded bytes)
        for unit in units:
            if len(unit) <= mtu:
                packets.append((unit, b"\x00\x00\x00\x01" + unit))
                continue
            header, body = unit[0], unit[1:]
            pieces = [body[i : i + mtu] for i in range(0, len(body), mtu)]
            for number, piece in enumerate(pieces):
                fu_indicator = (header & 0xE0) | 28
                fu_header = (
                    (header & 0x1F)
                    | (0x80 if number == 0 else 0)
                    | (0x40 if number == len(pieces) - 1 else 0)
                )
                depayloaded = (
                    (b"\x00\x00\x00\x01" + bytes([header]) + piece) if number == 0 else piece
                )
                packets.append((bytes([fu_indicator, fu_header]) + piece, depayloaded))
        for number, (rtp_payload, depayloaded) in enumerate(packets):
            packet = RtpPacket(
                payload_type=102,
                marker=number == len(packets) - 1,
                sequence_number=sequence & 0xFFFF,
                timestamp=(index * VIDEO_RATE // FPS) & 0xFFFFFFFF,
                ssrc=ssrc,
                payload=rtp_payload,
            )
            sequence += 1
            yield Sent(index / FPS, packet, depayloaded)
