"""Per-participant link quality (RTT, loss, jitter, bitrates, ICE path) and relayed sessions."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from media.aiortc_adapter import CandidatePath
from media.downlink import SubscriberLink
from media.metrics import MediaMetrics
from media.peer import MediaPeer
from media.subscription import Subscription


@dataclass(frozen=True)
class ClientPath:
    """The selected candidate pair as the participant's browser reports it (``rtc.path``)."""

    candidate_type: str
    protocol: str
    relay_protocol: str | None = None

    @property
    def relayed(self) -> bool:
        return self.candidate_type == "relay"


_CLOCK_RATES = {"audio": 48000, "video": 90000}


@dataclass(frozen=True)
class DownlinkFigures:
    """The server's congestion control of one participant's downlink."""

    estimate_kbps: float
    video_paused: bool
    layer: str | None


@dataclass(frozen=True)
class ParticipantStats:
    """One participant's link as seen by the server, over the last sampling interval."""

    participant_id: str
    rtt_ms: float | None
    loss_pct: float
    jitter_ms: float
    inbound_kbps: float
    outbound_kbps: float
    subscriber_estimate_kbps: float | None
    candidate_type: str | None = None
    candidate_protocol: str | None = None
    client_candidate_type: str | None = None
    client_protocol: str | None = None
    client_relay_protocol: str | None = None
    downlink_estimate_kbps: float | None = None
    video_paused: bool = False
    layer: str | None = None

    def as_wire(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Snapshot:
    at: float
    bytes_received: int
    bytes_sent: int
    packets_received: int
    packets_lost: int


class StatsSampler:
    """Turns cumulative aiortc counters of one peer connection into per-interval figures."""

    def __init__(self, participant_id: str) -> None:
        self.participant_id = participant_id
        self._previous = _Snapshot(time.monotonic(), 0, 0, 0, 0)

    def sample(
        self,
        report: dict[str, Any],
        remb_bps: list[int],
        server_path: CandidatePath | None = None,
        client_path: ClientPath | None = None,
        downlink: DownlinkFigures | None = None,
    ) -> ParticipantStats:
        """Figures since the previous sample, from ``await pc.getStats()``.

        ``server_path`` is the pair the server's ICE agent nominated (its remote candidate is
        the participant's side); ``client_path`` what the participant's browser reported;
        ``downlink`` the congestion controller's view of the participant's downlink.
        """
        now = time.monotonic()
        rtts: list[float] = []
        downlink_loss = 0.0
        jitter_ms = 0.0
        received = lost = 0
        bytes_received = bytes_sent = 0
        for stats in report.values():
            kind = getattr(stats, "type", "")
            if kind == "inbound-rtp":
                received += stats.packetsReceived
                lost += max(0, stats.packetsLost)
                clock = _CLOCK_RATES.get(stats.kind, 90000)
                jitter_ms = max(jitter_ms, 1000.0 * stats.jitter / clock)
            elif kind == "remote-inbound-rtp":
                if stats.roundTripTime is not None:
                    rtts.append(stats.roundTripTime * 1000.0)
                downlink_loss = max(downlink_loss, 100.0 * (stats.fractionLost or 0) / 256.0)
            elif kind == "transport":
                bytes_received = max(bytes_received, stats.bytesReceived)
                bytes_sent = max(bytes_sent, stats.bytesSent)
        current = _Snapshot(now, bytes_received, bytes_sent, received, lost)
        previous, self._previous = self._previous, current
        elapsed = now - previous.at
        uplink_expected = (received - previous.packets_received) + (lost - previous.packets_lost)
        uplink_loss = (
            100.0 * max(0, lost - previous.packets_lost) / uplink_expected
            if uplink_expected > 0
            else 0.0
        )
        return ParticipantStats(
            participant_id=self.participant_id,
            rtt_ms=round(sum(rtts) / len(rtts), 1) if rtts else None,
            loss_pct=round(max(uplink_loss, downlink_loss), 2),
            jitter_ms=round(jitter_ms, 1),
            inbound_kbps=_kbps(bytes_received - previous.bytes_received, elapsed),
            outbound_kbps=_kbps(bytes_sent - previous.bytes_sent, elapsed),
            subscriber_estimate_kbps=round(min(remb_bps) / 1000.0, 1) if remb_bps else None,
            candidate_type=server_path.remote_type if server_path else None,
            candidate_protocol=server_path.protocol if server_path else None,
            client_candidate_type=client_path.candidate_type if client_path else None,
            client_protocol=client_path.protocol if client_path else None,
            client_relay_protocol=client_path.relay_protocol if client_path else None,
            downlink_estimate_kbps=downlink.estimate_kbps if downlink else None,
            video_paused=downlink.video_paused if downlink else False,
            layer=downlink.layer if downlink else None,
        )


def _kbps(octets: int, elapsed_s: float) -> float:
    return round(8.0 * octets / elapsed_s / 1000.0, 1) if elapsed_s > 0 else 0.0


class RelayCount:
    """Counts one media session as relayed (TURN) once, by how the browser reaches the relay.

    The browser's own report (``rtc.path``) counts it by the relay protocol; a session the
    server saw relayed whose browser never reported its path counts as ``unreported`` when it
    closes.
    """

    def __init__(self, metrics: MediaMetrics) -> None:
        self.client_path: ClientPath | None = None
        self._metrics = metrics
        self._counted = False

    def client_reported(self, path: ClientPath) -> None:
        self.client_path = path
        if path.relayed and not self._counted:
            self._counted = True
            self._metrics.relayed_sessions.labels(path.relay_protocol or "unknown").inc()

    def session_closed(self, server_path: CandidatePath | None) -> None:
        if server_path is not None and server_path.remote_type == "relay" and not self._counted:
            self._counted = True
            self._metrics.relayed_sessions.labels("unreported").inc()


async def sample_participant(
    peer: MediaPeer,
    sampler: StatsSampler,
    link: SubscriberLink,
    subscriptions: Iterable[Subscription],
    client_path: ClientPath | None,
) -> ParticipantStats:
    """One participant's figures now: its connection's, and its downlink's as controlled."""
    report = await peer.stats_report()
    forwarded = list(subscriptions)
    estimates = [s.sender.remb_bps for s in forwarded if s.sender.remb_bps]
    video = [s for s in forwarded if s.kind == "video" and s.track is not None and not s.paused]
    return sampler.sample(
        report,
        [int(e) for e in estimates if e],
        peer.selected_path(),
        client_path,
        DownlinkFigures(
            estimate_kbps=round(link.estimate_kbps, 1),
            video_paused=link.gate.video_paused,
            layer=forwarded_layer([subscription.forwarded_layer for subscription in video]),
        ),
    )


def forwarded_layer(layers: Sequence[int | None]) -> str | None:
    """What ``layer`` in ``rtc.stats`` says of the video forwarded to a participant, from the
    temporal layer of each video stream it gets (``None``: a stream without layers):
    ``"T<n>"``, the lowest among its layered streams (every layer up to n goes); ``"full"``
    when none is layered; ``None`` when no video goes."""
    known = [layer for layer in layers if layer is not None]
    if known:
        return f"T{min(known)}"
    return "full" if layers else None
