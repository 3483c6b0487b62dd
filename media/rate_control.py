"""Delay-based rate control of one subscriber's downlink: a queue trend and an AIMD rate.

The receiver reports give the server an RTT per report (:mod:`media.rtt`); on a bottleneck the
RTT grows with the queue in front of it before that queue overflows. :class:`QueueTrend` turns
the RTT samples into the queueing delay (RTT above the lowest seen) and its trend (the slope of
a least-squares line through the last few samples) and says whether the link is overused (a
queue rising, or standing above ``overuse_queue_s``), underused (a queue draining) or neither.
:class:`AimdRate` is the rate that follows from it, as GCC's AIMD rate control does: on overuse
it drops to ``aimd_backoff`` times itself (at most once per ``aimd_decrease_interval_s`` or
RTT), while a queue drains it holds, otherwise it grows: by ``aimd_growth_per_s`` a second far
from the capacity the link showed at its last drops, by ``aimd_additive_share`` of that capacity
a second near it, and never above 1.5 times what the link was given. So the estimate settles
just under the capacity instead of climbing past it until loss appears and halving.

GCC drops to a share of the *delivered* rate. The relay cannot measure that well: without
transport-wide feedback it knows what it sent and the loss reported, and a relay often sends
less than its estimate (a publisher below its cap, frames dropped while a keyframe is awaited),
so a queue from one keyframe's burst cut the rate from 102 to 60 kbit/s on a 120 kbit/s link.
The step from the rate itself keeps each decrease to 15 %; what the link delivered still bounds
the estimate from below (:meth:`media.congestion.DownlinkEstimator.estimate_kbps`).

Pure logic with the clock passed in, like :mod:`media.congestion`, whose estimator owns both.
"""

from __future__ import annotations

import math
from collections import deque
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # media.congestion builds both classes below
    from media.congestion import CongestionConfig


class Usage(Enum):
    NORMAL = "normal"
    OVERUSE = "overuse"
    UNDERUSE = "underuse"


class QueueTrend:
    """The queueing delay in a subscriber's RTT and its trend, from the RTT samples."""

    def __init__(self, config: CongestionConfig) -> None:
        self._config = config
        self._samples: deque[tuple[float, float]] = deque()
        self._min_rtt_s: float | None = None

    def on_rtt(self, rtt_s: float, now: float) -> None:
        """An RTT measured at ``now`` (seconds)."""
        self._min_rtt_s = rtt_s if self._min_rtt_s is None else min(self._min_rtt_s, rtt_s)
        self._samples.append((now, rtt_s))
        while self._samples and self._samples[0][0] < now - self._config.trend_window_s:
            self._samples.popleft()

    def restart(self) -> None:
        """Forget the samples (not the lowest RTT): a probe is judged by its own."""
        self._samples.clear()

    def queue_s(self, now: float) -> float | None:
        """The queueing delay of the last two samples (the lower), ``None`` without a fresh one."""
        if not self._fresh(now) or self._min_rtt_s is None:
            return None
        last = [rtt for _, rtt in list(self._samples)[-2:]]
        return min(last) - self._min_rtt_s

    def slope(self, now: float) -> float | None:
        """Seconds of queue gained per second over the window (``None``: too few samples)."""
        if not self._fresh(now):
            return None
        samples = [
            (at, rtt) for at, rtt in self._samples if at >= now - self._config.trend_window_s
        ]
        if len(samples) < 3 or samples[-1][0] - samples[0][0] < 1.0:
            return None
        mean_t = math.fsum(at for at, _ in samples) / len(samples)
        mean_r = math.fsum(rtt for _, rtt in samples) / len(samples)
        spread = math.fsum((at - mean_t) ** 2 for at, _ in samples)
        if spread <= 0.0:
            return None
        return math.fsum((at - mean_t) * (rtt - mean_r) for at, rtt in samples) / spread

    def usage(self, now: float) -> Usage:
        """Underuse: a queue shrinking by ``overuse_slope`` a second since the sample before
        (what was sent too much is draining: hold); overuse: a queue above
        ``overuse_queue_s``, or one of ``rising_queue_s`` growing that fast; else normal. The
        queue is the lower of the last two samples' and the slope spans several: one late
        report (a busy machine) is not a queue."""
        queue = self.queue_s(now)
        if queue is None:
            return Usage.NORMAL
        config = self._config
        slope = self.slope(now)
        if self._draining():
            return Usage.UNDERUSE
        if queue > config.overuse_queue_s:
            return Usage.OVERUSE
        if slope is not None and slope > config.overuse_slope and queue > config.rising_queue_s:
            return Usage.OVERUSE
        return Usage.NORMAL

    def _draining(self) -> bool:
        """The last sample below the one before by ``overuse_slope`` a second: a queue that
        drains shows at once, where the window's slope still carries its rise."""
        if len(self._samples) < 2:
            return False
        (before_at, before), (last_at, last) = self._samples[-2], self._samples[-1]
        elapsed = max(last_at - before_at, 0.1)
        return (last - before) / elapsed < -self._config.overuse_slope

    def _fresh(self, now: float) -> bool:
        return bool(self._samples) and (
            now - self._samples[-1][0] <= self._config.evidence_max_age_s
        )


class AimdRate:
    """The delay-based rate (kbit/s, everything sent): multiplicative decrease on overuse, slow
    additive increase near the capacity seen at drops."""

    def __init__(self, config: CongestionConfig, kbps: float, now: float) -> None:
        self._config = config
        self.kbps = kbps
        self._at = now
        self._decreased_at: float | None = None
        # Capacity seen at drops: an exponential mean and variance of the delivered rate.
        self._capacity_kbps: float | None = None
        self._capacity_var = 0.0
        # Whether any usage was applied since the start (or the last reset).
        self.informed = False

    def reset(self, kbps: float, now: float) -> None:
        """Start again from ``kbps`` (a probe after a pause); the capacity seen is kept."""
        self.kbps = kbps
        self._at = now
        self._decreased_at = None
        self.informed = False

    def limit(self, kbps: float) -> None:
        """The estimate in use is ``kbps``: the rate goes on from there if above it."""
        self.kbps = min(self.kbps, kbps)

    def update(self, usage: Usage, delivered_kbps: float, rtt_s: float | None, now: float) -> None:
        """Apply ``usage`` with ``delivered_kbps`` the rate the link carried lately."""
        config = self._config
        elapsed = min(max(0.0, now - self._at), 2.0)
        self._at = now
        self.informed = True
        if usage is Usage.OVERUSE:
            interval = max(config.aimd_decrease_interval_s, rtt_s or 0.0)
            if self._decreased_at is None or now - self._decreased_at >= interval:
                self._decreased_at = now
                self._remember_capacity(self.kbps)
                self.kbps *= config.aimd_backoff
        elif usage is Usage.NORMAL:
            if self._near_capacity():
                capacity = self._capacity_kbps or self.kbps
                grown = self.kbps + config.aimd_additive_share * capacity * elapsed
            else:
                grown = self.kbps * (1.0 + config.aimd_growth_per_s * elapsed)
            # Never far above what the link is actually given: no estimate from an idle link.
            ceiling = max(self.kbps, 1.5 * delivered_kbps + 10.0)
            self.kbps = min(grown, ceiling)
        self.kbps = min(max(self.kbps, config.video_min_kbps / 5), config.max_kbps)

    def _remember_capacity(self, delivered_kbps: float) -> None:
        mean = self._capacity_kbps
        if mean is None or delivered_kbps > mean + 3.0 * math.sqrt(self._capacity_var):
            # The first drop, or the link carries more than it did: measure it again.
            self._capacity_kbps = delivered_kbps
            self._capacity_var = (0.1 * delivered_kbps) ** 2
            return
        deviation = delivered_kbps - mean
        self._capacity_kbps = mean + 0.2 * deviation
        self._capacity_var = 0.8 * self._capacity_var + 0.2 * deviation**2

    def _near_capacity(self) -> bool:
        mean = self._capacity_kbps
        if mean is None:
            return False
        spread = max(3.0 * math.sqrt(self._capacity_var), 0.1 * mean)
        if self.kbps > mean + spread:
            self._capacity_kbps = None  # grown past it without overuse: the link has improved
            return False
        return self.kbps >= mean - spread
