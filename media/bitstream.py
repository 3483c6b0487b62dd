"""VP8 and H.264 bitstream facts, read without decoding: where frames and keyframes start, sizes.

VP8 RTP payloads follow RFC 7741 (payload descriptor, then the VP8 frame header of RFC 6386);
H.264 RTP payloads follow RFC 6184 (single NAL unit, STAP-A, FU-A); the sequence parameter set
follows ITU-T H.264 7.3.2.1.1. The relay uses this to start subscriptions at keyframes, the
recorder to join packets into frames and to size its video streams.
"""

from __future__ import annotations

import re

from media.vp8_descriptor import parse_vp8_descriptor

H264_IDR = 5
H264_SPS = 7
H264_STAP_A = 24
H264_FU_A = 28
_VP8_START_CODE = b"\x9d\x01\x2a"
# profile_idc values whose SPS carries chroma format and scaling lists (H.264 7.3.2.1.1)
_H264_HIGH_PROFILES = frozenset((100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135))


# ----- VP8 ----------------------------------------------------------------------------------


def vp8_packet_starts_frame(payload: bytes) -> bool:
    """RFC 7741 descriptor: the start of partition 0 (S=1, PID=0) opens a frame."""
    return bool(payload) and (payload[0] & 0x10) != 0 and (payload[0] & 0x07) == 0


def starts_vp8_keyframe(payload: bytes) -> bool:
    """Whether this VP8 RTP payload is the first packet of a keyframe."""
    descriptor = parse_vp8_descriptor(payload)
    return descriptor is not None and descriptor.keyframe(payload)


def vp8_keyframe_size(frame: bytes) -> tuple[int, int] | None:
    """Width and height from a whole VP8 frame's keyframe header; ``None`` for an interframe."""
    if len(frame) < 10 or frame[0] & 0x01 or frame[3:6] != _VP8_START_CODE:
        return None
    width = int.from_bytes(frame[6:8], "little") & 0x3FFF
    height = int.from_bytes(frame[8:10], "little") & 0x3FFF
    return width, height


# ----- H.264 --------------------------------------------------------------------------------


def h264_nal_type(unit: bytes) -> int:
    """The ``nal_unit_type`` of a NAL unit (or of an RTP payload's first byte)."""
    return unit[0] & 0x1F


def h264_packet_may_start_frame(payload: bytes) -> bool:
    """RFC 6184: anything but the continuation of a fragmented NAL unit may open a frame."""
    if not payload:
        return False
    if h264_nal_type(payload) == H264_FU_A:  # only its start fragment opens a NAL unit
        return len(payload) > 1 and bool(payload[1] & 0x80)
    return True


def starts_h264_keyframe(payload: bytes) -> bool:
    """Whether this H.264 RTP payload starts an IDR picture (or carries the SPS before one)."""
    if not payload:
        return False
    nal_type = h264_nal_type(payload)
    if nal_type in (H264_IDR, H264_SPS):
        return True
    if nal_type == H264_STAP_A:
        offset = 1
        while offset + 2 < len(payload):
            size = int.from_bytes(payload[offset : offset + 2], "big")
            offset += 2
            if offset < len(payload) and h264_nal_type(payload[offset:]) in (H264_IDR, H264_SPS):
                return True
            offset += size
        return False
    if nal_type == H264_FU_A and len(payload) >= 2:
        header = payload[1]
        return bool(header & 0x80) and (header & 0x1F) == H264_IDR
    return False


def annexb_nal_units(data: bytes) -> list[bytes]:
    """The NAL units of an H.264 Annex-B byte stream (start codes removed)."""
    units = []
    for part in re.split(b"\x00\x00\x01", data):
        unit = part.rstrip(b"\x00")
        if unit:
            units.append(unit)
    return units


def h264_access_unit_facts(data: bytes) -> tuple[bool, tuple[int, int] | None]:
    """Of a whole Annex-B access unit: whether it holds an IDR slice, and its SPS's size."""
    units = annexb_nal_units(data)
    keyframe = any(h264_nal_type(unit) == H264_IDR for unit in units)
    sps = next((unit for unit in units if h264_nal_type(unit) == H264_SPS), None)
    return keyframe, h264_sps_size(sps) if sps is not None else None


class _BitReader:
    """Big-endian bits and Exp-Golomb codes (H.264 9.1) over a byte string."""

    def __init__(self, data: bytes) -> None:
        self._bits = "".join(f"{byte:08b}" for byte in data)
        self._at = 0

    def bit(self) -> int:
        value = int(self._bits[self._at])
        self._at += 1
        return value

    def bits(self, count: int) -> int:
        value = int(self._bits[self._at : self._at + count] or "0", 2)
        self._at += count
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        value = self.ue()
        return (value + 1) // 2 if value % 2 else -(value // 2)


def _skip_scaling_lists(reader: _BitReader, chroma_format: int) -> None:
    for index in range(8 if chroma_format != 3 else 12):
        if reader.bit():
            last, following = 8, 8
            for _ in range(16 if index < 6 else 64):
                if following:
                    following = (last + reader.se() + 256) % 256
                last = following or last


def h264_sps_size(sps: bytes) -> tuple[int, int] | None:
    """Width and height of an H.264 SPS NAL unit (ITU-T H.264 7.3.2.1.1), or ``None``."""
    rbsp = sps[1:].replace(b"\x00\x00\x03", b"\x00\x00")
    try:
        reader = _BitReader(rbsp[:64])
        profile = reader.bits(8)
        reader.bits(16)  # constraint flags, level_idc
        reader.ue()  # seq_parameter_set_id
        chroma_format = 1
        if profile in _H264_HIGH_PROFILES:
            chroma_format = reader.ue()
            if chroma_format == 3:
                reader.bit()
            reader.ue()
            reader.ue()
            reader.bit()
            if reader.bit():
                _skip_scaling_lists(reader, chroma_format)
        reader.ue()  # log2_max_frame_num_minus4
        order_type = reader.ue()
        if order_type == 0:
            reader.ue()
        elif order_type == 1:
            reader.bit()
            reader.se()
            reader.se()
            for _ in range(reader.ue()):
                reader.se()
        reader.ue()  # max_num_ref_frames
        reader.bit()
        width_mbs = reader.ue() + 1
        height_units = reader.ue() + 1
        frame_mbs_only = reader.bit()
        if not frame_mbs_only:
            reader.bit()
        reader.bit()
        crop = (0, 0, 0, 0)
        if reader.bit():
            crop = (reader.ue(), reader.ue(), reader.ue(), reader.ue())
    except (IndexError, ValueError):
        return None
    crop_x = 2 if chroma_format in (1, 2) else 1
    crop_y = (2 if chroma_format == 1 else 1) * (2 - frame_mbs_only)
    width = width_mbs * 16 - crop_x * (crop[0] + crop[1])
    height = (2 - frame_mbs_only) * height_units * 16 - crop_y * (crop[2] + crop[3])
    return (width, height) if width > 0 and height > 0 else None
