"""VP8 RTP payloads built by hand (RFC 7741 descriptor, then one VP8 header byte and a body),
and a publisher's L1T3 stream of them."""

from __future__ import annotations

from dataclasses import dataclass

# libwebrtc's L1T3 pattern: layers of 8 pictures; TL2 syncs at 1, TL1 at 2 (Y set).
L1T3_LAYERS = (0, 2, 1, 2, 0, 2, 1, 2)
L1T3_SYNC = (False, True, True, False, False, False, False, False)


def vp8_payload(
    picture_id: int | None = None,
    tl0_index: int | None = None,
    temporal_id: int | None = None,
    *,
    sync: bool = False,
    key_index: int | None = None,
    start: bool = True,
    keyframe: bool = False,
    long_picture_id: bool = True,
    body: bytes = b"\xaa\xbb\xcc",
) -> bytes:
    """One packet's payload; without picture id, TL0PICIDX, TID and KEYIDX no extension byte."""
    extension = (
        (0x80 if picture_id is not None else 0)
        | (0x40 if tl0_index is not None else 0)
        | (0x20 if temporal_id is not None else 0)
        | (0x10 if key_index is not None else 0)
    )
    first = (0x80 if extension else 0) | (0x10 if start else 0)
    out = bytearray((first,))
    if extension:
        out.append(extension)
    if picture_id is not None:
        if long_picture_id:
            out += bytes((0x80 | (picture_id >> 8), picture_id & 0xFF))
        else:
            out.append(picture_id)
    if tl0_index is not None:
        out.append(tl0_index)
    if temporal_id is not None or key_index is not None:
        out.append(((temporal_id or 0) << 6) | (0x20 if sync else 0) | ((key_index or 0) & 0x1F))
    out.append(0x00 if keyframe else 0x01)  # VP8 frame header: P bit 0 for a keyframe
    return bytes(out) + body


@dataclass(frozen=True)
class Packet:
    """One packet of a publisher's L1T3 stream."""

    sequence: int
    timestamp: int
    marker: bool
    picture: int  # the picture's index in the stream
    layer: int
    payload: bytes


def l1t3_stream(
    pictures: int,
    *,
    packets_per_picture: int = 2,
    sequence: int = 1_000,
    timestamp: int = 90_000,
    picture_id: int = 100,
    tl0_index: int = 10,
    long_picture_id: bool = True,
    keyframe_at: tuple[int, ...] = (0,),
) -> list[Packet]:
    """A publisher's packets in order: libwebrtc's L1T3 pattern, keyframes where asked."""
    modulus = 1 << 15 if long_picture_id else 1 << 7
    out = []
    tl0 = tl0_index - 1
    for index in range(pictures):
        layer = L1T3_LAYERS[index % 8]
        if layer == 0:
            tl0 += 1
        for part in range(packets_per_picture):
            start = part == 0
            payload = vp8_payload(
                (picture_id + index) % modulus,
                tl0 % 256,
                layer,
                sync=L1T3_SYNC[index % 8],
                start=start,
                keyframe=start and index in keyframe_at,
                long_picture_id=long_picture_id,
            )
            out.append(
                Packet(
                    (sequence + index * packets_per_picture + part) % 65_536,
                    (timestamp + 3_000 * index) % (1 << 32),
                    part == packets_per_picture - 1,
                    index,
                    layer,
                    payload,
                )
            )
    return out
