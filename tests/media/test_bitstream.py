"""VP8 and H.264 bitstream facts, table by table, on hand-built payloads and real encoder output."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from media.bitstream import (
    annexb_nal_units,
    h264_access_unit_facts,
    h264_packet_may_start_frame,
    h264_sps_size,
    starts_h264_keyframe,
    starts_vp8_keyframe,
    vp8_keyframe_size,
    vp8_packet_starts_frame,
)
from tests.recording.synthetic import h264_frames

# VP8 frame header bytes (RFC 6386 9.1): P bit 0 for a keyframe, 1 for an interframe.
KEY, INTER = 0x00, 0x01


@pytest.mark.parametrize(
    ("payload", "starts_frame", "may_start_stream"),
    [
        (b"", False, False),
        (bytes([0x10, KEY]), True, True),  # S=1, PID=0, no extension
        (bytes([0x10, INTER]), True, False),
        (bytes([0x00, KEY]), False, False),  # S=0: a continuation
        (bytes([0x11, KEY]), False, False),  # S=1 but partition 1
        (bytes([0x90, 0x80, 0x05, KEY]), True, True),  # X, I with a 7-bit picture id
        (bytes([0x90, 0x80, 0x85, 0x01, KEY]), True, True),  # X, I with a 15-bit picture id
        (bytes([0x90, 0x80, 0x85, 0x01, INTER]), True, False),
        (bytes([0x90, 0xF0, 0x05, 0x07, 0x20, KEY]), True, True),  # X: I, L, T and K
        (bytes([0x90, 0xF0, 0x05, 0x07, 0x20]), True, False),  # truncated before the header
        (bytes([0x90]), True, False),  # X set but no extension byte
        (bytes([0x90, 0x80]), True, False),  # I set but no picture id
    ],
)
def test_vp8_descriptor(payload: bytes, starts_frame: bool, may_start_stream: bool) -> None:
    assert vp8_packet_starts_frame(payload) is starts_frame
    assert starts_vp8_keyframe(payload) is may_start_stream


def _vp8_frames(width: int, height: int, count: int) -> list[bytes]:
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height = width, height
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = Fraction(1, 30)
    encoder.gop_size = 100
    out: list[bytes] = []
    for index in range(count):
        image = np.full((height, width, 3), (index * 40) % 255, dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        frame.pts, frame.time_base = index, Fraction(1, 30)
        out.extend(bytes(packet) for packet in encoder.encode(frame))
    out.extend(bytes(packet) for packet in encoder.encode(None))
    return out


def test_vp8_keyframe_size_of_real_frames() -> None:
    frames = _vp8_frames(352, 288, 4)
    assert vp8_keyframe_size(frames[0]) == (352, 288)
    assert [vp8_keyframe_size(f) for f in frames[1:]] == [None] * (len(frames) - 1)
    assert vp8_keyframe_size(frames[0][:9]) is None


@pytest.mark.parametrize(
    ("payload", "may_start", "may_start_stream"),
    [
        (b"", False, False),
        (bytes([0x65, 0x88]), True, True),  # IDR slice (type 5)
        (bytes([0x67, 0x42]), True, True),  # SPS (type 7) comes before an IDR
        (bytes([0x41, 0x9A]), True, False),  # non-IDR slice (type 1)
        (bytes([0x7C, 0x85, 0x00]), True, True),  # FU-A start of an IDR
        (bytes([0x7C, 0x05, 0x00]), False, False),  # FU-A continuation of an IDR
        (bytes([0x7C, 0x81, 0x00]), True, False),  # FU-A start of a non-IDR slice
        (bytes([0x7C]), False, False),  # FU-A without its header
        (bytes([0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x01, 0x68]), True, True),  # STAP-A: SPS, PPS
        (bytes([0x78, 0x00, 0x02, 0x41, 0x9A]), True, False),  # STAP-A: a non-IDR slice
    ],
)
def test_h264_payloads(payload: bytes, may_start: bool, may_start_stream: bool) -> None:
    assert h264_packet_may_start_frame(payload) is may_start
    assert starts_h264_keyframe(payload) is may_start_stream


def test_annexb_split_keeps_units_and_drops_start_codes() -> None:
    data = b"\x00\x00\x00\x01\x67\x42\x00\x00\x01\x68\xce\x00\x00\x00\x01\x65\x88\x00"
    assert annexb_nal_units(data) == [b"\x67\x42", b"\x68\xce", b"\x65\x88"]
    assert annexb_nal_units(b"") == []


@pytest.mark.parametrize("size", [(320, 240), (176, 144), (322, 182)])
def test_h264_sps_size_of_real_streams_including_cropping(size: tuple[int, int]) -> None:
    first, second = h264_frames((10, 200, 30), 2, size=size)
    keyframe, found = h264_access_unit_facts(first)
    assert keyframe and found == size  # 322x182 is coded as 336x192 and cropped back
    assert h264_access_unit_facts(second) == (False, None)  # no SPS before a P frame


def test_h264_sps_size_of_damaged_units_is_none() -> None:
    assert h264_sps_size(b"\x67") is None
    assert h264_sps_size(b"\x67\x42\x00\x1f") is None
