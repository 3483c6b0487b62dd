"""The VP8 payload descriptor read field by field, and written anew at the same width."""

from __future__ import annotations

import pytest

from media.vp8_descriptor import Vp8Descriptor, parse_vp8_descriptor, rewritten_descriptor
from tests.media.vp8_packets import vp8_payload


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (vp8_payload(), Vp8Descriptor(True, None, False, None, None, False, None, 1)),
        (
            vp8_payload(start=False),
            Vp8Descriptor(False, None, False, None, None, False, None, 1),
        ),
        (
            vp8_payload(0x1234, 200, 2, sync=True, key_index=17),
            Vp8Descriptor(True, 0x1234, True, 200, 2, True, 17, 6),
        ),
        (
            vp8_payload(0x55, long_picture_id=False),
            Vp8Descriptor(True, 0x55, False, None, None, False, None, 3),
        ),
        (
            vp8_payload(None, 9, 1),
            Vp8Descriptor(True, None, False, 9, 1, False, None, 4),
        ),
        (
            vp8_payload(None, None, None, key_index=5),  # K alone: the byte has no TID
            Vp8Descriptor(True, None, False, None, None, False, 5, 3),
        ),
        (
            vp8_payload(7, None, 3),
            Vp8Descriptor(True, 7, True, None, 3, False, None, 5),
        ),
        (bytes([0x11, 0x00]), Vp8Descriptor(False, None, False, None, None, False, None, 1)),
    ],
)
def test_reads_each_field(payload: bytes, expected: Vp8Descriptor) -> None:
    assert parse_vp8_descriptor(payload) == expected


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        bytes([0x90]),  # X without its extension byte
        bytes([0x90, 0x80]),  # I without a picture id
        bytes([0x90, 0x80, 0x85]),  # a 15-bit picture id cut short
        bytes([0x90, 0x40]),  # L without TL0PICIDX
        bytes([0x90, 0x20]),  # T without its byte
        bytes([0x90, 0xE0, 0x85, 0x01, 0x07]),  # I, L, T: the TID byte missing
    ],
)
def test_truncated_descriptors_are_refused(payload: bytes) -> None:
    assert parse_vp8_descriptor(payload) is None


def _keyframe(payload: bytes) -> bool:
    descriptor = parse_vp8_descriptor(payload)
    assert descriptor is not None
    return descriptor.keyframe(payload)


def test_keyframe_is_the_p_bit_of_a_frame_start() -> None:
    assert _keyframe(vp8_payload(1, 2, 0, keyframe=True))
    assert not _keyframe(vp8_payload(1, 2, 0))
    assert not _keyframe(vp8_payload(1, 2, 0, keyframe=True, start=False))
    assert not _keyframe(vp8_payload(1, 2, 0, body=b"")[:-1])  # no VP8 frame header


@pytest.mark.parametrize(
    ("payload", "picture_id", "tl0", "expected"),
    [
        (vp8_payload(0x1234, 200, 2, sync=True), 0x0042, 7, vp8_payload(0x42, 7, 2, sync=True)),
        (vp8_payload(0x7FFF, 255, 1), 0x8000 + 3, 256 + 4, vp8_payload(3, 4, 1)),  # wrap
        (
            vp8_payload(0x7F, 3, 1, long_picture_id=False),
            0x80 + 5,  # written at 7 bits
            4,
            vp8_payload(5, 4, 1, long_picture_id=False),
        ),
        (vp8_payload(10, 3, 1, key_index=9), None, 8, vp8_payload(10, 8, 1, key_index=9)),
        (vp8_payload(None, 3, 1), 99, 4, vp8_payload(None, 4, 1)),  # no picture id to write
        (vp8_payload(10, None, 1), 11, 4, vp8_payload(11, None, 1)),  # no TL0PICIDX to write
    ],
)
def test_rewrites_picture_id_and_tl0_at_their_width(
    payload: bytes, picture_id: int | None, tl0: int | None, expected: bytes
) -> None:
    descriptor = parse_vp8_descriptor(payload)
    assert descriptor is not None
    head = rewritten_descriptor(payload, descriptor, picture_id, tl0)
    assert len(head) == descriptor.size
    assert head + payload[descriptor.size :] == expected
