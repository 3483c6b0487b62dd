"""Per-subscriber congestion control of the relay: estimate, send budget, pause and feedback.

Pure logic with the clock passed in (``now`` in seconds, monotonic); :mod:`media.downlink` wires
it to aiortc. The model, per subscriber (one participant's peer connection with the server):

* **Estimate** (:class:`DownlinkEstimator`). The subscriber's REMB is a receive-side,
  delay-based estimate (abs-send-time; aiortc and Chrome alike) computed over the packets that
  carry abs-send-time, which the server only negotiates for video: it estimates what *video* may
  use. The server adds the audio it is sending (measured) to get the link estimate. A
  GCC-style loss controller runs beside it on the subscriber's receiver reports (more than 10 %
  loss lowers it by half the loss, less than 2 % lets it grow 8 % a second, never far above what
  is actually sent); the estimate used is the lower of the two, the loss one alone when the
  subscriber sends no REMB. REMB rises are followed at up to 8 % a second; a REMB *drop* only
  while the link shows congestion itself (loss, or a standing queue in the RTT), since
  receive-side estimators also react to the receiver's own scheduling jitter. No
  transport-wide feedback (transport-cc) is negotiated: aiortc has none, so the *subscriber*
  estimates (REMB) and the server corrects with loss.
* **Budget** (:class:`SendBudget`), once the subscriber's link has shown congestion (5 % loss
  or a standing queue: :attr:`DownlinkEstimator.constrained`; before that video is forwarded as
  received, since a REMB grows only with what it measures). Every RTP packet sent to the
  subscriber (audio, video, retransmissions) is debited from a :class:`ByteBudget` filled at the
  estimate. Audio is always sent
  (it may put the bucket in debt: audio first). A video frame starts only when the bucket is not
  in debt; a dropped frame makes the subscription wait for a keyframe (VP8 cannot skip a frame
  safely), so the latest keyframe's own overdraw does not count against the frames after it.
  Video leaves through a pacer (:mod:`media.pacer`) at a little above the estimate, so a
  keyframe does not hit the link as one burst. Retransmissions go first in the pacer, within a
  second bucket filled at a share of the estimate.
* **Retransmission** (:class:`RetransmitGate`). A NACKed packet is resent once per RTT at most,
  and not at all when older than an RTT-based horizon (capped at a fixed age).
* **Pause** (:class:`~media.pause_gate.PauseGate`). When the video the estimate leaves room for
  (estimate minus audio and overhead) stays below the lowest useful video rate (or, for video
  with temporal layers, below the base layers' rate when that is lower), video to this
  subscriber pauses (audio continues). REMB is only fed by video, so while paused the estimate
  cannot grow: the gate probes by sending video at a little above the lowest rate after a
  back-off (3 s), judges the probe by the receiver reports (loss, audio loss, RTT growth)
  rather than the REMB, and reports the subscriber resumed only once the probe held.
* **Feedback upstream** (:mod:`media.publisher_cap`: :func:`~media.publisher_cap.publisher_cap`
  and :class:`~media.publisher_cap.RembPacer`). Each published video track is capped at the
  smallest share of its subscribers that are not paused and not outvoted (a subscriber with
  under a third of the best share is served by frame dropping instead of lowering everyone; of
  a track with temporal layers, one whose share carries the base layer at the best's rate is
  served by a lower layer, :mod:`media.layer_selection`);
  increases are rate-limited (:class:`~media.publisher_cap.CapSmoother`) unless the subscriber
  that set the cap stopped counting, and REMB messages are paced.

Simulcast is not used; see ``media/SIMULCAST.md``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True)
class CongestionConfig:
    """Tunables of the per-subscriber control loop (rates in kbit/s, times in seconds)."""

    video_min_kbps: float = 50.0
    initial_kbps: float = 300.0
    max_kbps: float = 4000.0
    video_overhead: float = 0.06
    retransmit_share: float = 0.3
    pace_factor: float = 1.2
    max_pacing_delay_s: float = 0.3
    burst_s: float = 0.25
    frame_debt_s: float = 0.5
    max_debt_s: float = 1.0
    remb_max_age_s: float = 6.0
    nack_max_age_s: float = 2.0
    pause_hold_s: float = 2.0
    probe_rate_factor: float = 1.2
    probe_backoff_s: float = 3.0
    probe_backoff_max_s: float = 3.0  # equal: no doubling by default (see PauseGate)
    probe_confirm_s: float = 3.0
    probe_max_s: float = 5.0
    probe_sent_min_s: float = 1.5
    probe_max_loss: float = 0.05
    probe_fail_loss: float = 0.1
    probe_queue_s: float = 0.15
    evidence_max_age_s: float = 3.0
    loss_memory_s: float = 5.0
    resume_stable_s: float = 10.0
    outvoted_ratio: float = 1 / 3
    publisher_headroom: float = 0.85
    cap_increase_per_s: float = 0.08
    congested_keyframe_interval_s: float = 2.0
    congested_loss: float = 0.1
    # Temporal layers (media.layer_selection): rates measured over a window; a higher layer is
    # chosen once it has fitted with headroom for a hold time, a lower one at once.
    layer_rate_window_s: float = 2.0
    layer_up_headroom: float = 1.15
    layer_up_hold_s: float = 2.0
    # Loss (fraction of packets) that shows congestion: from then on the link is budgeted
    # (``constrained``), REMB drops are followed and the estimate may not grow.
    lossy_link_loss: float = 0.05
    # The loss controller (GCC's): above ``loss_backoff_above`` the estimate drops by half the
    # loss, below ``loss_growth_below`` it grows 8 % a second.
    loss_backoff_above: float = 0.1
    loss_growth_below: float = 0.02
    # A publisher's uplink loss (from the server's receiver reports) at which a drop of the
    # server's own estimate is followed (media.upstream).
    uplink_congested_loss: float = 0.05
    # Bytes a packet costs beyond its payload, as budgets count them: the RTP header with the
    # extensions the server writes; RTX adds the original sequence number; SRTP adds the
    # authentication tag (SRTP_AES128_CM_HMAC_SHA1_80) after serialisation.
    rtp_header_bytes: int = 24
    rtx_header_bytes: int = 26
    srtp_tag_bytes: int = 10


@dataclass(frozen=True)
class LinkEvidence:
    """What the subscriber's receiver reports say about its link, for the pause gate.

    ``fraction_lost`` is smoothed over all streams; ``audio_lost`` is the latest audio report's
    own figure (``audio_at`` when it came); ``queue_s`` how far the RTT stands above the lowest
    seen (``None`` without a fresh RTT); ``reported_at`` when the latest report came.
    """

    fraction_lost: float = 0.0
    audio_lost: float | None = None
    audio_at: float | None = None
    queue_s: float | None = None
    reported_at: float | None = None


class RateMeter:
    """Bytes over a sliding window, as kbit/s."""

    def __init__(self, window_s: float = 2.0) -> None:
        self._window_s = window_s
        self._samples: deque[tuple[float, int]] = deque()
        self._total = 0

    def add(self, size: int, now: float) -> None:
        self._samples.append((now, size))
        self._total += size
        self._expire(now)

    def kbps(self, now: float) -> float:
        self._expire(now)
        return 8.0 * self._total / self._window_s / 1000.0

    def _expire(self, now: float) -> None:
        while self._samples and self._samples[0][0] < now - self._window_s:
            self._total -= self._samples.popleft()[1]


class ByteBudget:
    """Bytes allowed at ``rate_kbps``, holding at most ``burst_s`` of it; may go into debt."""

    def __init__(self, rate_kbps: float, burst_s: float, max_debt_s: float, now: float) -> None:
        self.rate_kbps = rate_kbps
        self._burst_s = burst_s
        self._max_debt_s = max_debt_s
        self._tokens = rate_kbps * 125.0 * burst_s
        self._at = now

    def tokens(self, now: float) -> float:
        """Bytes available now (negative: in debt)."""
        rate = self.rate_kbps * 125.0
        self._tokens = min(rate * self._burst_s, self._tokens + rate * max(0.0, now - self._at))
        self._at = now
        return self._tokens

    def spend(self, size: int, now: float) -> None:
        self.tokens(now)
        floor = -self.rate_kbps * 125.0 * self._max_debt_s
        self._tokens = max(floor, self._tokens - size)


class DownlinkEstimator:
    """The subscriber's link estimate from its REMBs, receiver reports and the audio sent."""

    def __init__(self, config: CongestionConfig, now: float) -> None:
        self._config = config
        self._rembs: dict[frozenset[int], tuple[float, float]] = {}
        # Until the link shows congestion, a REMB below the starting estimate is not followed:
        # a receiver's first REMB measures the trickle of the call's first seconds.
        self._video_kbps: float | None = config.initial_kbps
        self._video_at = now
        self._min_rtt_s: float | None = None
        self._last_rtt_s: float | None = None
        self._rtt_at: float | None = None
        self._floor_until = now
        self._lossy_at: float | None = None
        self._probe_at: float | None = None
        self._probe_video_at: float | None = None
        self._reported_at: float | None = None
        self._audio: tuple[float, float] | None = None
        self._loss_kbps = config.initial_kbps
        self._loss_at = now
        # Until the link first shows congestion (5 % loss, a standing queue) the relay forwards
        # as it receives: no frame dropped, no pacing (see SubscriberLink.video_frame_allowed).
        self.constrained = False
        self.fraction_lost = 0.0
        self.rtt_s: float | None = None

    def on_remb(self, ssrcs: frozenset[int], bps: int, now: float) -> None:
        """A REMB covering ``ssrcs`` (of this subscriber's senders): replaces overlapping ones."""
        for key in [k for k in self._rembs if k & ssrcs]:
            del self._rembs[key]
        self._rembs[ssrcs] = (bps / 1000.0, now)
        total = self._fresh_remb_kbps(now) or 0.0
        held = self._video_kbps
        elapsed = max(0.0, now - self._video_at)
        self._video_at = now
        if held is None or not self.link_is_clear(now) and total < held:
            self._video_kbps = total
        elif total < held:
            # No congestion of its own to see: come down a little, in case the receiver sees
            # a queue first; a jittery report costs 8 %, a real overuse repeats and is followed.
            # During a probe and the first seconds after it, not below the probe's rate: a
            # receiver's estimator that was starved measures the little it now gets, so only
            # loss or a queue may pause video again then.
            floor = min(held, self._probe_video_kbps) if now < self._floor_until else 0.0
            self._video_kbps = max(total, 0.92 * held, floor)
        elif total > held and self._may_grow(now):
            # Rises at most 8 % a second (and 10 kbit/s), as a sender would ramp up.
            self._video_kbps = min(total, held * (1.0 + 0.08 * min(elapsed, 2.0)) + 10.0)

    @property
    def _probe_video_kbps(self) -> float:
        return self._config.video_min_kbps * self._config.probe_rate_factor

    def on_report(
        self,
        fraction_lost: float | None,
        rtt_s: float | None,
        sent_kbps: float,
        now: float,
        kind: str = "video",
        since: float | None = None,
    ) -> None:
        """A receiver report block on a ``kind`` stream: loss fraction (0..1) since the last one
        (``None``: not meaningful; ``since``: when that one came), RTT if known.

        Loss figures about packets sent before the current probe are left out: audio flows all
        along, so an audio report whose interval lies mostly before the probe began counts the
        loss of the link the probe is testing (a browser reports audio about every 5 s); and
        the first video report whose interval began before the probe's first video packet
        counts the packets lost at the end of the flow before the pause, which the receiver
        only finds missing when the probe's packets arrive. A report that tells nothing (no
        RTT, and no loss figure or one left out) is not a report about the link: it does not
        make the evidence fresh, nor judge a probe.
        """
        if rtt_s is not None and rtt_s > 0:
            self._reported_at = now
            self.rtt_s = rtt_s if self.rtt_s is None else 0.8 * self.rtt_s + 0.2 * rtt_s
            self._min_rtt_s = min(self._min_rtt_s or rtt_s, rtt_s)
            self._last_rtt_s = rtt_s
            self._rtt_at = now
        if self._queue_standing(now):
            self.constrained = True
        if fraction_lost is None or self._counts_before_probe(kind, since, now):
            return
        self._reported_at = now
        if kind == "audio":
            self._audio = (fraction_lost, now)
        # One report covers a second or so of one stream: a single lost packet of a slow
        # stream reads as several percent, so decisions use a smoothed figure.
        self.fraction_lost = 0.5 * self.fraction_lost + 0.5 * fraction_lost
        fraction_lost = self.fraction_lost
        if fraction_lost >= self._config.lossy_link_loss:
            self._lossy_at = now
            self.constrained = True
        elapsed = now - self._loss_at
        if elapsed < 0.5:
            return
        self._loss_at = now
        if fraction_lost > self._config.loss_backoff_above:
            self._loss_kbps *= 1.0 - 0.5 * fraction_lost
        elif fraction_lost < self._config.loss_growth_below:
            ceiling = max(self._loss_kbps, 1.5 * sent_kbps + 10.0)
            self._loss_kbps = min(ceiling, self._loss_kbps * (1.0 + 0.08 * min(elapsed, 2.0)))
        self._loss_kbps = min(max(self._loss_kbps, 10.0), self._config.max_kbps)

    def _counts_before_probe(self, kind: str, since: float | None, now: float) -> bool:
        probe_at = self._probe_at
        if probe_at is None or since is None:
            return False
        if kind == "audio":
            return probe_at - since > now - probe_at
        return self._probe_video_at is None or since < self._probe_video_at

    def on_video_sent(self, now: float) -> None:
        """A video packet left: the first since a probe began marks when its video started."""
        if self._probe_at is not None and self._probe_video_at is None:
            self._probe_video_at = now

    @property
    def informed(self) -> bool:
        """Whether the subscriber has reported anything yet (a REMB or a receiver report)."""
        return bool(self._rembs) or self.rtt_s is not None

    def remb_kbps(self, now: float) -> float | None:
        """The video estimate taken from REMB, ``None`` without a fresh REMB.

        The sum of the subscriber's current REMBs, followed up by at most 8 % a second while no
        queue is forming, and down at once while the link shows congestion itself
        (:meth:`link_is_clear`), by 8 % a REMB otherwise: a receive-side
        delay estimator also reacts to the receiver's own scheduling jitter, and a relay that
        obeys it sends less, which the estimator then measures as the new throughput, down to
        nothing.
        """
        total = self._fresh_remb_kbps(now)
        if total is None:
            return None
        return self._video_kbps if self._video_kbps is not None else total

    def _fresh_remb_kbps(self, now: float) -> float | None:
        fresh = [
            kbps for kbps, at in self._rembs.values() if now - at <= self._config.remb_max_age_s
        ]
        return sum(fresh) if fresh else None

    def _may_grow(self, now: float) -> bool:
        """No sign of a queue forming (the last RTT within 100 ms of the lowest seen) and no
        loss shown within ``loss_memory_s``."""
        if self.fraction_lost >= self._config.lossy_link_loss or self._lost_recently(now):
            return False
        if self._last_rtt_s is None or self._min_rtt_s is None:
            return True
        return self._last_rtt_s <= self._min_rtt_s + 0.1

    def evidence(self, now: float) -> LinkEvidence:
        """The receiver reports' view of the link now (an RTT older than
        ``evidence_max_age_s`` is no evidence of a queue)."""
        queue_s = None
        if (
            self._last_rtt_s is not None
            and self._min_rtt_s is not None
            and self.rtt_s is not None
            and self._rtt_at is not None
            and now - self._rtt_at <= self._config.evidence_max_age_s
        ):
            # The lower of the last and the smoothed excess: one late report is not a queue.
            queue_s = min(self._last_rtt_s, self.rtt_s) - self._min_rtt_s
        return LinkEvidence(
            fraction_lost=self.fraction_lost,
            audio_lost=self._audio[0] if self._audio else None,
            audio_at=self._audio[1] if self._audio else None,
            queue_s=queue_s,
            reported_at=self._reported_at,
        )

    def link_is_clear(self, now: float) -> bool:
        """Little loss (under 5 %, and none that much within ``loss_memory_s`` before
        ``now``) and no standing queue in the RTT.

        A queue shows in the last RTT *and* the smoothed one (200 and 150 ms above the lowest
        seen): one late report, as a busy machine produces, is not a queue; an RTT that is not
        fresh shows none. Loss is remembered
        because on a link already full at its first RTT sample the lowest RTT seen includes
        the standing queue, so only loss shows the congestion, in overflow bursts that the
        smoothing forgets within two reports, while REMBs arrive in between. (A busy machine
        delays reports but loses nothing, so the memory costs a healthy link nothing there.)
        """
        if self.fraction_lost >= self._config.lossy_link_loss or self._lost_recently(now):
            return False
        if self._last_rtt_s is None or self._min_rtt_s is None or self.rtt_s is None:
            return False
        return not self._queue_standing(now)

    def _queue_standing(self, now: float) -> bool:
        """A fresh RTT, the last and the smoothed one 200 and 150 ms above the lowest seen."""
        if (
            self._last_rtt_s is None
            or self._min_rtt_s is None
            or self.rtt_s is None
            or not self._rtt_fresh(now)
        ):
            return False
        return self._last_rtt_s > self._min_rtt_s + 0.2 and self.rtt_s > self._min_rtt_s + 0.15

    def _rtt_fresh(self, now: float) -> bool:
        """The last RTT is recent (``evidence_max_age_s``) and, during a probe, about it: a
        queue measured before the probe (on the link it tests) does not pull it down."""
        rtt_at = self._rtt_at
        return (
            rtt_at is not None
            and now - rtt_at <= self._config.evidence_max_age_s
            and (self._probe_at is None or rtt_at >= self._probe_at)
        )

    def _lost_recently(self, now: float) -> bool:
        return self._lossy_at is not None and now - self._lossy_at < self._config.loss_memory_s

    def estimate_kbps(self, audio_kbps: float, now: float) -> float:
        """The link estimate used for allocation: video REMB plus audio, bounded by loss."""
        remb = self.remb_kbps(now)
        if remb is None:
            return self._loss_kbps
        return min(self._loss_kbps, remb * (1.0 + self._config.video_overhead) + audio_kbps)

    def seed(self, kbps: float, video_kbps: float, now: float) -> None:
        """Start again from ``kbps`` for a probe sending ``video_kbps`` of video.

        REMB estimators keep the low value they had when video stopped and only grow slowly
        from it: like any drop, a lower REMB only counts once the link shows congestion, and
        until ``probe_max_s + resume_stable_s`` from now a clear link keeps the probe's rate.
        The smoothed loss starts again too: the probe is judged by the reports about it.
        """
        self._rembs.clear()
        self._video_kbps = video_kbps
        self._video_at = now
        self._loss_kbps = kbps
        self._loss_at = now
        self.fraction_lost = 0.0
        self._lossy_at = None
        self._probe_at = now
        self._probe_video_at = None
        self._floor_until = now + self._config.probe_max_s + self._config.resume_stable_s


def video_room_kbps(estimate_kbps: float, audio_kbps: float, config: CongestionConfig) -> float:
    """What the estimate leaves for video once audio and packet overhead are served."""
    return max(0.0, (estimate_kbps - audio_kbps) / (1.0 + config.video_overhead))


class SendBudget:
    """Byte budgets for one subscriber: everything sent, and retransmissions on top."""

    def __init__(self, config: CongestionConfig, rate_kbps: float, now: float) -> None:
        self._config = config
        self._all = ByteBudget(rate_kbps, config.burst_s, config.max_debt_s, now)
        self._retransmit = ByteBudget(
            rate_kbps * config.retransmit_share, 4 * config.burst_s, 0.0, now
        )
        self.audio = RateMeter()
        self.video = RateMeter()
        self.video_bytes = 0

    def set_rate(self, rate_kbps: float, now: float) -> None:
        self._all.tokens(now)
        self._retransmit.tokens(now)
        self._all.rate_kbps = rate_kbps
        self._retransmit.rate_kbps = rate_kbps * self._config.retransmit_share

    def on_sent(self, kind: str, size: int, now: float) -> None:
        """Debit a packet that was sent (audio is never refused, only counted)."""
        self._all.spend(size, now)
        (self.audio if kind == "audio" else self.video).add(size, now)
        if kind != "audio":
            self.video_bytes += size

    def video_frame_allowed(self, now: float, exempt_bytes: int = 0) -> bool:
        """Whether a new video frame may start now: the bucket is less than ``frame_debt_s``
        in debt, not counting ``exempt_bytes`` of it (a keyframe's overdraw: the frames after
        it still go, the pacer spreads them, and the average stays at the rate)."""
        debt_allowed = self._all.rate_kbps * 125.0 * self._config.frame_debt_s
        return self._all.tokens(now) + exempt_bytes >= -debt_allowed

    def in_debt(self, now: float) -> bool:
        """Whether more has been sent than the rate allowed so far."""
        return self._all.tokens(now) < 0.0

    def retransmit_allowed(self, size: int, now: float) -> bool:
        """Debit a retransmission if the retransmission share allows it (it is sent at once)."""
        if self._retransmit.tokens(now) < size:
            return False
        self._retransmit.spend(size, now)
        self._all.spend(size, now)
        self.video.add(size, now)
        self.video_bytes += size
        return True


class Resend(Enum):
    SENT = "sent"
    BUDGET = "budget"
    STALE = "stale"
    DUPLICATE = "duplicate"
    UNKNOWN = "unknown"


class RetransmitGate:
    """Which NACKed packets of one outgoing stream are worth resending now."""

    def __init__(self, config: CongestionConfig, history: int) -> None:
        self._config = config
        self._history = history
        self._sent: dict[int, tuple[int, float]] = {}
        self._resent: dict[int, tuple[int, float]] = {}

    def on_sent(self, sequence: int, now: float) -> None:
        slot = sequence % self._history
        self._sent[slot] = (sequence, now)
        self._resent.pop(slot, None)

    def check(self, sequence: int, rtt_s: float | None, now: float) -> tuple[Resend, float]:
        """Whether to resend ``sequence``, and until when it is worth it (budget comes later)."""
        slot = sequence % self._history
        sent = self._sent.get(slot)
        if sent is None or sent[0] != sequence:
            return Resend.UNKNOWN, now
        if rtt_s is None:
            horizon = self._config.nack_max_age_s
        else:
            horizon = min(self._config.nack_max_age_s, max(1.0, 4.0 * rtt_s + 0.2))
        deadline = sent[1] + horizon
        if now > deadline:
            return Resend.STALE, deadline
        resent = self._resent.get(slot)
        repeat_s = max(rtt_s or 0.1, 0.05)
        if resent is not None and resent[0] == sequence and now - resent[1] < repeat_s:
            return Resend.DUPLICATE, deadline
        return Resend.SENT, deadline

    def on_resent(self, sequence: int, now: float) -> None:
        self._resent[sequence % self._history] = (sequence, now)
