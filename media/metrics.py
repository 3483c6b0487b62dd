"""Prometheus collectors for the media relay, registered on the registry the app passes in."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


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
