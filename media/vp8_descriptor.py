"""The VP8 RTP payload descriptor (RFC 7741 section 4.2): read it, and write its numbers anew.

```
 X R N S R PID      first byte: eXtension, Non-reference, Start of partition, partition id
 I L T K RSV        extension byte (X): picture Id, tL0picidx, Tid, Keyidx present
 M PictureID        7 bits, or 15 with the M bit (I)
 TL0PICIDX          8 bits (L)
 TID Y KEYIDX       2 + 1 + 5 bits (T or K)
```

A relay that drops temporal layers rewrites PictureID and TL0PICIDX for each subscriber; it
writes them at the same width, so the descriptor keeps its size and the rest of the payload
is not touched (:func:`rewritten_descriptor`).
"""

from __future__ import annotations

from typing import NamedTuple

PICTURE_ID_MODULUS_SHORT = 1 << 7
PICTURE_ID_MODULUS_LONG = 1 << 15
TL0_MODULUS = 1 << 8


class Vp8Descriptor(NamedTuple):
    """What the relay reads of one packet's descriptor (``None``: the field is absent)."""

    starts_frame: bool
    """S=1 and PID=0: the packet opens a frame."""
    picture_id: int | None
    long_picture_id: bool
    """The M bit: the picture id has 15 bits, else 7."""
    tl0_index: int | None
    temporal_id: int | None
    layer_sync: bool
    """Y: the frame depends only on base layer (TL0) frames."""
    key_index: int | None
    size: int
    """Bytes of the descriptor; the VP8 frame data starts after them."""

    @property
    def picture_id_modulus(self) -> int:
        return PICTURE_ID_MODULUS_LONG if self.long_picture_id else PICTURE_ID_MODULUS_SHORT

    def keyframe(self, payload: bytes) -> bool:
        """Whether ``payload`` (this descriptor's packet) is the first packet of a keyframe."""
        return self.starts_frame and len(payload) > self.size and not payload[self.size] & 0x01


def parse_vp8_descriptor(payload: bytes) -> Vp8Descriptor | None:
    """The descriptor at the start of a VP8 RTP payload; ``None`` when it is truncated."""
    if not payload:
        return None
    first = payload[0]
    starts_frame = bool(first & 0x10) and not first & 0x07
    if not first & 0x80:
        return Vp8Descriptor(starts_frame, None, False, None, None, False, None, 1)
    if len(payload) < 2:
        return None
    extension = payload[1]
    at = 2
    picture_id = tl0_index = temporal_id = key_index = None
    long_picture_id = layer_sync = False
    if extension & 0x80:  # I
        if len(payload) <= at:
            return None
        long_picture_id = bool(payload[at] & 0x80)
        if long_picture_id:
            if len(payload) <= at + 1:
                return None
            picture_id = ((payload[at] & 0x7F) << 8) | payload[at + 1]
            at += 2
        else:
            picture_id = payload[at]
            at += 1
    if extension & 0x40:  # L
        if len(payload) <= at:
            return None
        tl0_index = payload[at]
        at += 1
    if extension & 0x30:  # T or K share one byte
        if len(payload) <= at:
            return None
        byte = payload[at]
        if extension & 0x20:
            temporal_id = byte >> 6
            layer_sync = bool(byte & 0x20)
        if extension & 0x10:
            key_index = byte & 0x1F
        at += 1
    return Vp8Descriptor(
        starts_frame,
        picture_id,
        long_picture_id,
        tl0_index,
        temporal_id,
        layer_sync,
        key_index,
        at,
    )


def rewritten_descriptor(
    payload: bytes, descriptor: Vp8Descriptor, picture_id: int | None, tl0_index: int | None
) -> bytes:
    """``payload``'s descriptor bytes with a new picture id and TL0PICIDX (each written only
    where the descriptor has the field, at its width); the same size as the original."""
    out = bytearray(payload[: descriptor.size])
    at = 2
    if descriptor.picture_id is not None:
        if descriptor.long_picture_id:
            if picture_id is not None:
                value = picture_id % PICTURE_ID_MODULUS_LONG
                out[at] = 0x80 | (value >> 8)
                out[at + 1] = value & 0xFF
            at += 2
        else:
            if picture_id is not None:
                out[at] = picture_id % PICTURE_ID_MODULUS_SHORT
            at += 1
    if descriptor.tl0_index is not None and tl0_index is not None:
        out[at] = tl0_index % TL0_MODULUS
    return bytes(out)
