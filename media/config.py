"""Media configuration, built by the composition root from the server settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from media.congestion import CongestionConfig


@dataclass(frozen=True)
class IceServerConfig:
    """A STUN/TURN server: handed to clients and used by the server's own ICE agent."""

    urls: str
    username: str | None = None
    credential: str | None = None


@dataclass(frozen=True)
class MediaConfig:
    """How this node's SFU binds, announces, negotiates and reports."""

    media_ips: tuple[str, ...] = ()
    announced_ip: str | None = None
    udp_ports: tuple[int, int] | None = None
    ice_servers: tuple[IceServerConfig, ...] = ()
    stats_interval_s: float = 3.0
    keyframe_request_interval_s: float = 0.3
    max_participants: int = 12
    # Client candidates one peer session takes (buffered before the offer or added after it).
    max_remote_candidates: int = 64
    video_codecs: tuple[str, ...] = ("video/VP8", "video/H264")
    audio_codecs: tuple[str, ...] = ("audio/opus", "audio/PCMU", "audio/PCMA")
    force_transcode: bool = False
    control_interval_s: float = 0.5
    congestion: CongestionConfig = field(default_factory=CongestionConfig)
