"""One subscriber's congestion control wired to its forwarding senders (:mod:`media.congestion`).

A :class:`SubscriberLink` per participant gathers what its browser reports on every stream the
server sends it (REMB, receiver reports), meters what is sent, and answers the forwarding path:
may this video frame start, may this NACK be served, how often may it ask for keyframes. The
router's control loop calls :meth:`SubscriberLink.tick` to update the estimate and the pause
state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiortc.rtp import RTP_HISTORY_SIZE

from media.congestion import (
    CongestionConfig,
    DownlinkEstimator,
    Resend,
    RetransmitGate,
    SendBudget,
    video_room_kbps,
)
from media.metrics import MediaMetrics
from media.pacer import Pacer, Send
from media.pause_gate import GateState, PauseGate
from media.rtp_numbers import seq_diff

Lost = Callable[[], None]


@dataclass(frozen=True)
class LinkState:
    """What a subscriber is told about video sent to it (``rtc.link_state``)."""

    video_paused: bool
    reason: str | None
    estimate_kbps: float | None

    def as_wire(self, consultation_id: str) -> dict[str, Any]:
        return {
            "consultation_id": consultation_id,
            "video_paused": self.video_paused,
            "reason": self.reason,
            "estimate_kbps": self.estimate_kbps,
        }


class SubscriberLink:
    """The downlink of one participant as the server controls it."""

    def __init__(
        self, config: CongestionConfig, metrics: MediaMetrics, keyframe_interval_s: float
    ) -> None:
        now = time.monotonic()
        self.config = config
        self._keyframe_interval_s = keyframe_interval_s
        self._metrics = metrics
        self.estimator = DownlinkEstimator(config, now)
        self.budget = SendBudget(config, config.initial_kbps, now)
        self.gate = PauseGate(config)
        self.estimate_kbps = config.initial_kbps
        self.video_room_kbps = video_room_kbps(config.initial_kbps, 0.0, config)
        self.video_streams = 0
        # The room its video needs before it pauses (None: the lowest video rate).
        self.video_floor_kbps: float | None = None
        self._probe_from_bytes = 0
        self._keyframe_bytes = 0
        self.pacer = Pacer(
            config.initial_kbps * config.pace_factor,
            self._may_retransmit,
        )

    # -- what the subscriber reports (called by its ForwardingSenders) -------------------------

    def on_remb(self, ssrcs: frozenset[int], bitrate_bps: int) -> None:
        self.estimator.on_remb(ssrcs, bitrate_bps, time.monotonic())

    def on_report(
        self,
        kind: str,
        fraction_lost: float | None,
        rtt_s: float | None,
        since: float | None,
        now: float,
    ) -> None:
        sent = self.budget.audio.kbps(now) + self.budget.video.kbps(now)
        self.estimator.on_report(fraction_lost, rtt_s, sent, now, kind, since)

    # -- what the forwarding path asks ----------------------------------------------------------

    def on_sent(self, kind: str, size: int) -> None:
        now = time.monotonic()
        self.budget.on_sent(kind, size + self.config.srtp_tag_bytes, now)
        if kind == "video":
            self.estimator.on_video_sent(now)

    def video_frame_allowed(self) -> bool:
        """Whether a new video frame may start now; a refusal is counted as a dropped frame.

        Every frame starts while the link has never shown congestion: a receiver's REMB grows
        only with what it receives (at most 8 % a second), so budgeting a clear link from the
        starting estimate dropped frames for many seconds of every call. Afterwards the bytes
        of the latest keyframe, until the budget is next out of debt, do not count against the
        frames after it: dropping one of those would waste the keyframe (VP8 cannot decode past
        a skipped frame) and ask for another as large, again and again. Only an overdraw of the
        frames themselves drops one.
        """
        if not self.estimator.constrained:
            return True
        now = time.monotonic()
        if not self.budget.in_debt(now):
            self._keyframe_bytes = 0
        exempt = self._keyframe_bytes
        if (
            self.budget.video_frame_allowed(now, exempt)
            and self.pacer.queued_s(exempt) < self.config.max_pacing_delay_s
        ):
            return True
        self._metrics.video_frames_dropped.inc()
        return False

    @property
    def congested(self) -> bool:
        """Loss above the congested threshold, or room for little more than the lowest video."""
        return (
            self.estimator.fraction_lost > self.config.congested_loss
            or self.video_room_kbps < 2 * self.config.video_min_kbps
        )

    @property
    def keyframe_interval_s(self) -> float:
        """Least time between keyframe requests on behalf of this subscriber."""
        if self.congested:
            return self.config.congested_keyframe_interval_s
        return self._keyframe_interval_s

    def keyframe_started(self) -> None:
        """A keyframe is about to be sent: its bytes replace the previous one's exemption."""
        self._keyframe_bytes = 0

    def send_video(self, size: int, send: Callable[[], None], keyframe: bool = False) -> None:
        """Send a video packet (``keyframe``: of a keyframe): through the pacer once the link
        has shown congestion, at once before (the publisher paced it already; on a clear link
        the pacer would only add a keyframe's burst to the latency of the packets behind it)."""
        if keyframe:
            self._keyframe_bytes += size + self.config.srtp_tag_bytes
        if not self.estimator.constrained and self.pacer.idle:
            send()
        else:
            self.pacer.enqueue(size + self.config.srtp_tag_bytes, send)

    async def close(self) -> None:
        await self.pacer.close()

    def sender_feedback(self, kind: str, lost: Lost) -> DownlinkFeedback:
        return DownlinkFeedback(self, kind, lost)

    def retransmit(
        self, gate: RetransmitGate, sequence: int, size: int, send: Send, lost: Lost
    ) -> None:
        """Queue a resend of ``sequence`` unless too old or just resent (budget: in the pacer).

        ``lost()`` is called when the packet will not be resent (too old, or its deadline
        passed waiting for budget): the subscriber cannot decode past it.
        """
        now = time.monotonic()
        outcome, deadline = gate.check(sequence, self.estimator.rtt_s, now)
        if outcome is not Resend.SENT:
            self._metrics.retransmissions.labels(outcome.value).inc()
            if outcome is Resend.STALE:
                lost()
            return
        gate.on_resent(sequence, now)

        def expired() -> None:
            self._metrics.retransmissions.labels(Resend.BUDGET.value).inc()
            lost()

        self.pacer.enqueue_retransmission(
            size + self.config.srtp_tag_bytes, send, deadline, expired
        )

    def _may_retransmit(self, size: int) -> bool:
        if not self.budget.retransmit_allowed(size, time.monotonic()):
            return False
        self._metrics.retransmissions.labels(Resend.SENT.value).inc()
        return True

    # -- the control loop -------------------------------------------------------------------

    def tick(self, now: float) -> GateState | None:
        """Update the estimate, the budget and the pause state; the new state if it changed."""
        audio = self.budget.audio.kbps(now)
        self.estimate_kbps = self.estimator.estimate_kbps(audio, now)
        self.video_room_kbps = video_room_kbps(self.estimate_kbps, audio, self.config)
        evidence = self.estimator.evidence(now)
        sent_kbit = 8.0 * (self.budget.video_bytes - self._probe_from_bytes) / 1000.0
        change = (
            self.gate.update(self.video_room_kbps, now, evidence, sent_kbit, self.video_floor_kbps)
            if self.video_streams
            else None
        )
        if change is GateState.PROBING:
            self._probe_from_bytes = self.budget.video_bytes
            probe = self.gate.probe_kbps
            self.estimator.seed(audio + probe, probe / (1.0 + self.config.video_overhead), now)
            self.estimate_kbps = audio + probe
            self.video_room_kbps = video_room_kbps(self.estimate_kbps, audio, self.config)
        self.budget.set_rate(self.estimate_kbps, now)
        # Audio does not wait in the pacer, so video gets what is left of the pacing rate.
        self.pacer.rate_kbps = max(
            self.config.video_min_kbps, self.estimate_kbps * self.config.pace_factor - audio
        )
        return change

    @property
    def video_share_kbps(self) -> float:
        """The video rate each video stream forwarded to this subscriber may use."""
        return self.video_room_kbps / max(1, self.video_streams)

    @property
    def publisher_share_kbps(self) -> float | None:
        """The video share this subscriber holds its publishers to, ``None`` for none.

        None while it has not reported yet (a guess, not a limit), while its video is paused or
        a probe is finding out whether to resume it, and while its room is below the lowest
        video rate (heading for a pause): such a subscriber is served within its own budget,
        not by lowering the publishers for everyone.
        """
        if (
            not self.estimator.informed
            or self.gate.video_paused
            or self.video_room_kbps < self.config.video_min_kbps
        ):
            return None
        return self.video_share_kbps

    def state(self) -> LinkState:
        paused = self.gate.video_paused
        return LinkState(
            video_paused=paused,
            reason="weak_connection" if paused else None,
            estimate_kbps=round(self.estimate_kbps, 1),
        )


class DownlinkFeedback:
    """The hooks one ``ForwardingSender`` calls: its subscriber's link and its own NACK gate."""

    def __init__(self, link: SubscriberLink, kind: str, lost: Lost) -> None:
        self.kind = kind
        self._link = link
        self._lost = lost
        self._gap_end: int | None = None
        self._reported_at: float | None = None
        self._gate = RetransmitGate(link.config, RTP_HISTORY_SIZE)

    def on_remb(self, ssrcs: frozenset[int], bitrate_bps: int) -> None:
        self._link.on_remb(ssrcs, bitrate_bps)

    def on_report(self, fraction_lost: float, rtt_s: float | None, highest_sequence: int) -> None:
        """A receiver report block about this stream: its loss covers the time since the last;
        ``highest_sequence`` is the (extended) highest sequence number it has received."""
        now = time.monotonic()
        since, self._reported_at = self._reported_at, now
        gap_end = self._gap_end
        if gap_end is not None:
            # The numbering gap of a resync reads as loss in the report whose interval holds
            # it (the first to have seen a packet after it), however many come before that one.
            if seq_diff(highest_sequence & 0xFFFF, gap_end) >= 0:
                self._gap_end = None
            self._link.on_report(self.kind, None, rtt_s, since, now)
            return
        self._link.on_report(self.kind, fraction_lost, rtt_s, since, now)

    def skip_gap(self, resumes_at: int) -> None:
        """Sequence numbers were skipped on purpose (a resync) up to ``resumes_at``, the
        subscriber's number of the packet the stream resumes with: not loss."""
        self._gap_end = resumes_at

    def on_sent(self, sequence: int, size: int) -> None:
        self._gate.on_sent(sequence, time.monotonic())
        self._link.on_sent(self.kind, size)

    def retransmit(self, sequence: int, payload_bytes: int, send: Send) -> None:
        size = payload_bytes + self._link.config.rtx_header_bytes
        self._link.retransmit(self._gate, sequence, size, send, self._lost)
