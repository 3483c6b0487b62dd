"""Prometheus collectors for the media relay, registered on the registry the app passes in."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class MediaMetrics:
    """Counters and gauges of this node's SFU."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry if registry is not None else CollectorRegistry()
        self.peers = Gauge(
            "teleconsult_media_peers", "Open participant peer connections", registry=registry
        )
        self.routers = Gauge(
            "teleconsult_media_routers", "Consultations with media on this node", registry=registry
        )
        self.forwarded_packets = Counter(
            "teleconsult_media_forwarded_packets",
            "RTP packets forwarded to subscribers, by kind",
            ["kind"],
            registry=registry,
        )
        self.forwarded_bytes = Counter(
            "teleconsult_media_forwarded_bytes",
            "RTP payload bytes forwarded to subscribers, by kind",
            ["kind"],
            registry=registry,
        )
        self.keyframe_requests = Counter(
            "teleconsult_media_keyframe_requests", "PLIs sent to publishers", registry=registry
        )
        self.transcoding_subscriptions = Counter(
            "teleconsult_media_transcoding_subscriptions",
            "Subscriptions that fell back to transcoding (no shared codec), by kind",
            ["kind"],
            registry=registry,
        )
        self.relayed_sessions = Counter(
            "teleconsult_media_relayed_sessions",
            "Media sessions whose selected ICE path runs through a TURN relay, by the protocol "
            "the client uses to reach the relay (udp, tcp, tls; unreported: seen by the server "
            "only)",
            ["protocol"],
            registry=registry,
        )
        self.transcoding_active = Gauge(
            "teleconsult_media_transcoding_active",
            "Subscriptions transcoding now",
            registry=registry,
        )
        self.video_paused_subscribers = Gauge(
            "teleconsult_media_video_paused_subscribers",
            "Participants whose incoming video is paused for a weak connection",
            registry=registry,
        )
        self.video_pause_changes = Counter(
            "teleconsult_media_video_pause_changes",
            "Weak-connection video pauses, probes and resumes, by state entered",
            ["state"],
            registry=registry,
        )
        self.video_frames_dropped = Counter(
            "teleconsult_media_video_frames_dropped",
            "Video frames not forwarded because the subscriber's send budget was spent",
            registry=registry,
        )
        self.retransmissions = Counter(
            "teleconsult_media_retransmissions",
            "NACKed packets: sent, or refused (budget, stale, duplicate, unknown)",
            ["outcome"],
            registry=registry,
        )
        self.keyframe_requests_throttled = Counter(
            "teleconsult_media_keyframe_requests_throttled",
            "Subscriber picture-loss requests not passed on (throttled for congestion)",
            registry=registry,
        )
        self.downlink_estimate_kbps = Histogram(
            "teleconsult_media_downlink_estimate_kbps",
            "Subscribers' downlink estimates used for allocation, sampled at each stats report",
            buckets=(50, 100, 150, 250, 400, 600, 1000, 1500, 2500, 4000),
            registry=registry,
        )
