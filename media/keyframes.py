"""Keyframe detection on RTP payloads (VP8 per RFC 7741, H.264 per RFC 6184), without decoding."""

from __future__ import annotations

_H264_IDR = 5
_H264_SPS = 7
_H264_STAP_A = 24
_H264_FU_A = 28


def starts_vp8_keyframe(payload: bytes) -> bool:
    """Whether this VP8 RTP payload is the first packet of a keyframe."""
    if not payload:
        return False
    first = payload[0]
    start_of_partition = bool(first & 0x10)
    partition_id = first & 0x07
    if not start_of_partition or partition_id != 0:
        return False
    offset = 1
    if first & 0x80:  # X: extension byte follows
        if len(payload) < 2:
            return False
        extension = payload[1]
        offset = 2
        if extension & 0x80:  # I: picture id, 7 or 15 bits
            if len(payload) <= offset:
                return False
            offset += 2 if payload[offset] & 0x80 else 1
        if extension & 0x40:  # L: TL0PICIDX
            offset += 1
        if extension & 0x30:  # T or K: TID/KEYIDX byte
            offset += 1
    if len(payload) <= offset:
        return False
    return (payload[offset] & 0x01) == 0  # P bit of the VP8 frame header: 0 = keyframe


def starts_h264_keyframe(payload: bytes) -> bool:
    """Whether this H.264 RTP payload starts an IDR picture (or carries the SPS before one)."""
    if not payload:
        return False
    nal_type = payload[0] & 0x1F
    if nal_type in (_H264_IDR, _H264_SPS):
        return True
    if nal_type == _H264_STAP_A:
        offset = 1
        while offset + 2 < len(payload):
            size = int.from_bytes(payload[offset : offset + 2], "big")
            offset += 2
            if offset < len(payload) and payload[offset] & 0x1F in (_H264_IDR, _H264_SPS):
                return True
            offset += size
        return False
    if nal_type == _H264_FU_A and len(payload) >= 2:
        header = payload[1]
        return bool(header & 0x80) and (header & 0x1F) == _H264_IDR
    return False


def starts_keyframe(mime_type: str, payload: bytes) -> bool:
    """Whether a subscription may start at this packet: audio, or a keyframe's first packet."""
    mime = mime_type.lower()
    if mime == "video/vp8":
        return starts_vp8_keyframe(payload)
    if mime == "video/h264":
        return starts_h264_keyframe(payload)
    return mime.startswith("audio/")
