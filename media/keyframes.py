"""Where a subscription may start: audio at any packet, video at a keyframe's first packet."""

from __future__ import annotations

from media.bitstream import starts_h264_keyframe, starts_vp8_keyframe


def starts_keyframe(mime_type: str, payload: bytes) -> bool:
    """Whether a subscription may start at this packet: audio, or a keyframe's first packet."""
    mime = mime_type.lower()
    if mime == "video/vp8":
        return starts_vp8_keyframe(payload)
    if mime == "video/h264":
        return starts_h264_keyframe(payload)
    return mime.startswith("audio/")
