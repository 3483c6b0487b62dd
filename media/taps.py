"""The recording tap: read-only access to every forwarded publisher packet of a consultation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from aiortc.rtp import RtpPacket

Source = Literal["camera", "microphone", "screen"]


@dataclass(frozen=True)
class TrackInfo:
    """One published track: ``track_id`` is ``<participant_id>:<source>``."""

    track_id: str
    participant_id: str
    kind: Literal["audio", "video"]
    source: Source
    codec_mime: str
    clock_rate: int


class PacketTap(Protocol):
    """Receives forwarded packets; must be quick and must not raise (it runs on the media path)."""

    def on_rtp(self, track: TrackInfo, packet: RtpPacket, payload: bytes) -> None:
        """One publisher packet in arrival order; ``payload`` is the depayloaded codec data."""

    def on_track_ended(self, track: TrackInfo) -> None:
        """The publisher stopped or left; no more packets for ``track``."""
