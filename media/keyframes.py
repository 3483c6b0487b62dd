"""Where a subscriber's stream may start: any audio packet, a video keyframe's first packet."""

from __future__ import annotations

from media.bitstream import starts_h264_keyframe, starts_vp8_keyframe


def may_start_stream(mime_type: str, payload: bytes) -> bool:
    """Whether a subscriber's stream may start (or restart) at this packet.

    True for every audio packet (each decodes on its own) and for the first packet of a video
    keyframe; false for any other video packet.
    """
    mime = mime_type.lower()
    if mime == "video/vp8":
        return starts_vp8_keyframe(payload)
    if mime == "video/h264":
        return starts_h264_keyframe(payload)
    return mime.startswith("audio/")
