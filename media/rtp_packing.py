"""RTP packets as bytes: the forwarding path's serialiser, its reader for received packets, and the
header facts it reads back.

A forwarded packet gets a new header (the subscriber's SSRC, payload type, sequence number and
timestamp) and new header extensions: extension ids belong to one BUNDLE group, so the
publisher's cannot be copied to a subscriber; the server writes its own ``mid``, abs-send-time
and, for audio, the publisher's audio level. RFC 3550 section 5.1 (header, padding) and RFC 8285
(one-byte and two-byte extension forms) describe the layout. Only plain values pass through here.

:func:`read_rtp` reads what the relay uses of a packet (the fixed header, the payload without
padding, and the audio level and abs-send-time among its extensions): for a received packet
instead of aiortc's full parse of every extension, and for a NACKed packet's payload size.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

NTP_UNIX_OFFSET_S = 2_208_988_800  # 1900-01-01 to 1970-01-01
_ONE_BYTE_PROFILE = 0xBEDE
_TWO_BYTE_PROFILE = 0x1000
_HEADER = struct.Struct("!BBHII")
_EXTENSION_HEADER = struct.Struct("!HH")
_VERSION_BITS = 0x80  # version 2


@dataclass(frozen=True)
class ExtensionIds:
    """The ids a subscriber's m-section negotiated for the extensions the server writes."""

    mid: int | None = None
    abs_send_time: int | None = None
    audio_level: int | None = None

    @classmethod
    def from_uris(cls, negotiated: Sequence[tuple[str, int]]) -> ExtensionIds:
        """From ``(uri, id)`` pairs; extensions the server does not write are ignored."""
        ids = dict(negotiated)
        return cls(ids.get(MID_URI), ids.get(ABS_SEND_TIME_URI), ids.get(AUDIO_LEVEL_URI))


def ntp_time(unix_s: float) -> int:
    """A 64-bit NTP timestamp (32.32 fixed point since 1900) of a Unix time in seconds."""
    seconds = int(unix_s)
    fraction = int((unix_s - seconds) * (1 << 32))
    return ((seconds + NTP_UNIX_OFFSET_S) << 32) | fraction


def abs_send_time(ntp: int) -> bytes:
    """The 3-byte abs-send-time value: 6.18 fixed-point seconds, from an NTP timestamp."""
    return ((ntp >> 14) & 0xFFFFFF).to_bytes(3, "big")


def audio_level(voice: bool, level: int) -> bytes:
    """The 1-byte ssrc-audio-level value (RFC 6464): voice flag and level in -dBov."""
    return bytes(((0x80 if voice else 0) | (level & 0x7F),))


def pack_extensions(elements: Sequence[tuple[int, bytes]]) -> bytes:
    """The header extension block (profile, length, elements, zero padding) for ``elements``.

    The one-byte form when every id is 1..14 and every value 1..16 bytes long, else the
    two-byte form; empty for no elements.
    """
    return _layout(elements)[0]


def _layout(elements: Sequence[tuple[int, bytes]]) -> tuple[bytes, list[int]]:
    """:func:`pack_extensions`, and where in the block each element's value starts."""
    if not elements:
        return b"", []
    one_byte = all(0 < i < 15 and 0 < len(v) <= 16 for i, v in elements)
    body = bytearray()
    offsets = []
    for extension_id, value in elements:
        if one_byte:
            body.append((extension_id << 4) | (len(value) - 1))
        else:
            body += bytes((extension_id, len(value)))
        offsets.append(_EXTENSION_HEADER.size + len(body))
        body += value
    body += bytes(-len(body) % 4)
    profile = _ONE_BYTE_PROFILE if one_byte else _TWO_BYTE_PROFILE
    return _EXTENSION_HEADER.pack(profile, len(body) // 4) + body, offsets


class ExtensionWriter:
    """The extension block of one subscriber stream, laid out once and filled in per packet.

    Elements in aiortc's order: ``mid`` (fixed), abs-send-time, and the audio level when the
    publisher's packet has one.
    """

    def __init__(self, ids: ExtensionIds, mid: str | None) -> None:
        fixed = [(ids.mid, mid.encode())] if ids.mid and mid is not None else []
        if ids.abs_send_time:
            fixed.append((ids.abs_send_time, bytes(3)))
        self._plain, offsets = _layout(fixed)
        self._abs_at = offsets[-1] if ids.abs_send_time else None
        self._with_level: tuple[bytes, int] | None = None
        if ids.audio_level:
            block, offsets = _layout([*fixed, (ids.audio_level, bytes(1))])
            self._with_level = block, offsets[-1]

    def block(self, ntp: int, level: tuple[bool, int] | None) -> bytes:
        """The block for a packet sent at ``ntp`` whose publisher packet had ``level``."""
        if level is not None and self._with_level is not None:
            template, level_at = self._with_level
            block = bytearray(template)
            block[level_at] = audio_level(*level)[0]
        elif self._abs_at is None:
            return self._plain
        else:
            block = bytearray(self._plain)
        if self._abs_at is not None:
            block[self._abs_at : self._abs_at + 3] = abs_send_time(ntp)
        return bytes(block)


def pack_rtp(
    payload_type: int,
    marker: bool,
    sequence: int,
    timestamp: int,
    ssrc: int,
    payload: bytes,
    extensions: bytes = b"",
    padding_size: int = 0,
    payload_head: bytes = b"",
) -> bytes:
    """One RTP packet without CSRCs; ``extensions`` from :func:`pack_extensions`.

    ``sequence`` and ``timestamp`` are taken modulo 2**16 and 2**32. ``padding_size`` bytes of
    padding (the count in the last byte) are appended, as in a padding-only probe packet.
    ``payload_head`` replaces as many bytes at the start of ``payload`` (a rewritten codec
    descriptor), written straight into the packet without copying the payload first.
    """
    first = _VERSION_BITS | (0x20 if padding_size else 0) | (0x10 if extensions else 0)
    header = _HEADER.pack(
        first,
        (0x80 if marker else 0) | payload_type,
        sequence & 0xFFFF,
        timestamp & 0xFFFFFFFF,
        ssrc,
    )
    padding = bytes(padding_size - 1) + bytes((padding_size,)) if padding_size else b""
    if payload_head:
        tail = memoryview(payload)[len(payload_head) :]
        return b"".join((header, extensions, payload_head, tail, padding))
    return header + extensions + payload + padding


def sequence_number(data: bytes) -> int:
    """The sequence number of an RTP packet."""
    return int.from_bytes(data[2:4], "big")


class RtpHeader(NamedTuple):
    """What the relay reads of a received packet (:func:`read_rtp`)."""

    marker: bool
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    padding_size: int
    audio_level: tuple[bool, int] | None
    abs_send_time: int | None


def read_rtp(
    data: bytes, audio_level_id: int | None, abs_send_time_id: int | None = None
) -> RtpHeader:
    """The header fields, payload, and the audio level and abs-send-time of a packet (each
    read only when its extension id is given).

    Raises ``ValueError`` for what aiortc's parser refuses too: not version 2, truncated CSRCs
    or extension block, an impossible padding count.
    """
    if len(data) < _HEADER.size:
        raise ValueError("RTP packet shorter than its fixed header")
    first, second, sequence, timestamp, ssrc = _HEADER.unpack_from(data)
    if first & 0xC0 != _VERSION_BITS:
        raise ValueError("RTP packet has invalid version")
    start = _HEADER.size + 4 * (first & 0x0F)
    level = sent_at = None
    if first & 0x10:
        if len(data) < start + _EXTENSION_HEADER.size:
            raise ValueError("RTP packet has truncated extension header")
        profile, words = _EXTENSION_HEADER.unpack_from(data, start)
        block_start = start + _EXTENSION_HEADER.size
        start = block_start + 4 * words
        if len(data) < start:
            raise ValueError("RTP packet has truncated extension block")
        block = data[block_start:start]
        if audio_level_id is not None:
            value = _element(block, profile, audio_level_id)
            if value:
                level = (value[0] & 0x80 == 0x80, value[0] & 0x7F)
        if abs_send_time_id is not None:
            value = _element(block, profile, abs_send_time_id)
            if value is not None and len(value) == 3:
                sent_at = int.from_bytes(value, "big")
    elif len(data) < start:
        raise ValueError("RTP packet has truncated CSRC")
    padding = 0
    if first & 0x20:
        padding = data[-1]
        if not padding or padding > len(data) - start:
            raise ValueError("RTP packet padding length is invalid")
    return RtpHeader(
        bool(second & 0x80),
        second & 0x7F,
        sequence,
        timestamp,
        ssrc,
        data[start : len(data) - padding],
        padding,
        level,
        sent_at,
    )


def _element(block: bytes, profile: int, wanted: int) -> bytes | None:
    """The value of extension element ``wanted`` in a one-byte or two-byte form block."""
    two_byte = profile & 0xFFF0 == _TWO_BYTE_PROFILE
    if not two_byte and profile != _ONE_BYTE_PROFILE:
        return None
    at = 0
    while at < len(block):
        if block[at] == 0:  # padding between elements
            at += 1
            continue
        if two_byte:
            if at + 1 >= len(block):
                return None
            element_id, length, at = block[at], block[at + 1], at + 2
        else:
            element_id, length, at = block[at] >> 4, (block[at] & 0x0F) + 1, at + 1
            if element_id == 15:  # reserved: stop reading (RFC 8285 4.2)
                return None
        if element_id == wanted:
            return block[at : at + length] if at + length <= len(block) else None
        at += length
    return None
