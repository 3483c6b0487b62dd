"""The delay-based rate control (media.rate_control) alone and in the downlink estimator, on
synthetic feedback from a bottleneck with a drop-tail queue."""

from __future__ import annotations

import random
import time
from collections import deque
from dataclasses import dataclass, field

import pytest

from media.congestion import CongestionConfig, DownlinkEstimator
from media.downlink import SubscriberLink
from media.metrics import MediaMetrics
from media.rate_control import AimdRate, QueueTrend, Usage

CONFIG = CongestionConfig()
PACKET_KBIT = 8.0


def test_a_rising_queue_is_overuse_a_draining_one_underuse_one_late_report_neither() -> None:
    trend = QueueTrend(CONFIG)
    for second in range(5):
        trend.on_rtt(0.30, float(second))
    assert trend.usage(4.0) is Usage.NORMAL
    trend.on_rtt(0.45, 4.5)  # one late report: the queue is the lower of the last two
    assert trend.queue_s(4.5) == pytest.approx(0.0)
    assert trend.usage(4.5) is Usage.NORMAL
    for second in range(5, 9):
        trend.on_rtt(0.30, float(second))
    for step, rtt in enumerate((0.33, 0.37, 0.41, 0.45)):  # 80 ms a second, still under 120
        trend.on_rtt(rtt, 9.0 + 0.5 * step)
    slope = trend.slope(10.5)
    assert slope is not None and slope > CONFIG.overuse_slope, slope
    assert trend.usage(10.5) is Usage.OVERUSE
    for step, rtt in enumerate((0.55, 0.52, 0.47, 0.42, 0.38)):  # draining, still above 120
        trend.on_rtt(rtt, 11.0 + 0.5 * step)
    assert trend.usage(13.0) is Usage.UNDERUSE
    for step in range(9):  # a standing queue of 150 ms
        trend.on_rtt(0.45, 14.0 + 0.5 * step)
    assert trend.usage(18.0) is Usage.OVERUSE
    # An RTT older than evidence_max_age_s says nothing.
    assert trend.usage(18.0 + CONFIG.evidence_max_age_s + 0.1) is Usage.NORMAL


def test_aimd_drops_by_a_share_and_grows_slowly_near_the_capacity_seen() -> None:
    aimd = AimdRate(CONFIG, 120.0, now=0.0)
    aimd.update(Usage.OVERUSE, delivered_kbps=110.0, rtt_s=0.3, now=1.0)
    assert aimd.kbps == pytest.approx(0.85 * 120.0)
    aimd.update(Usage.OVERUSE, delivered_kbps=100.0, rtt_s=0.3, now=1.5)  # within an interval
    assert aimd.kbps == pytest.approx(102.0)
    aimd.update(Usage.UNDERUSE, delivered_kbps=100.0, rtt_s=0.3, now=2.0)  # draining: hold
    assert aimd.kbps == pytest.approx(102.0)
    # Near the capacity seen at the drop (120): additive, 3 % of it a second.
    aimd.update(Usage.NORMAL, delivered_kbps=100.0, rtt_s=0.3, now=3.0)
    assert aimd.kbps == pytest.approx(102.0 + 0.03 * 120.0)
    # A queue from one keyframe while the sender sent far less: 15 % off, not a cliff.
    aimd.update(Usage.OVERUSE, delivered_kbps=60.0, rtt_s=0.3, now=4.0)
    assert aimd.kbps == pytest.approx(0.85 * (102.0 + 0.03 * 120.0))
    # Far below it (a probe after a pause): multiplicative, 8 % a second.
    aimd.reset(40.0, now=10.0)
    aimd.update(Usage.NORMAL, delivered_kbps=40.0, rtt_s=0.3, now=11.0)
    assert aimd.kbps == pytest.approx(40.0 * 1.08)
    # Never far above what the link is given.
    for second in range(12, 60):
        aimd.update(Usage.NORMAL, delivered_kbps=20.0, rtt_s=0.3, now=float(second))
    assert aimd.kbps == pytest.approx(40.0 * 1.08)


@dataclass
class Bottleneck:
    """A fluid model of a link: capacity, a drop-tail queue, one-way delay, random loss."""

    capacity_kbps: float
    queue_s: float
    delay_s: float
    loss: float
    rng: random.Random = field(default_factory=lambda: random.Random(24))
    queued_kbit: float = 0.0
    offered_kbit: float = 0.0
    lost_kbit: float = 0.0
    overflowed: bool = False

    def carry(self, kbps: float, dt: float) -> None:
        offered = kbps * dt
        self.offered_kbit += offered
        # Random loss by packet (8 kbit): a report about a dozen packets reads 0 or 8 %.
        packets = int(offered / PACKET_KBIT + self.rng.random())
        lost = sum(1 for _ in range(packets) if self.rng.random() < self.loss)
        self.lost_kbit += lost * PACKET_KBIT
        self.queued_kbit = max(0.0, self.queued_kbit + offered - self.capacity_kbps * dt)
        limit = self.capacity_kbps * self.queue_s
        self.overflowed = self.queued_kbit > limit
        if self.overflowed:
            self.lost_kbit += self.queued_kbit - limit
            self.queued_kbit = limit

    def report(self) -> tuple[float, float]:
        """``(fraction lost since the last report, RTT now)``."""
        lost = min(1.0, self.lost_kbit / self.offered_kbit) if self.offered_kbit else 0.0
        self.offered_kbit = self.lost_kbit = 0.0
        return lost, 2 * self.delay_s + self.queued_kbit / self.capacity_kbps


def estimates_on(
    link: Bottleneck, seconds: float, with_remb: bool, audio_kbps: float = 40.0
) -> list[tuple[float, float]]:
    """``(time, estimate)`` every 0.5 s of a subscriber whose relay sends what it estimates.

    Receiver reports come every second (a browser's video RTCP interval). ``with_remb``: the
    receiver also sends a REMB every second, as a receive-side GCC does: on a growing queue or
    an overflow 0.85 of the video it received over the last half second (right after an
    overflow little: its decoder waits for a keyframe), otherwise 8 % more a second.
    """
    estimator = DownlinkEstimator(CONFIG, now=0.0)
    dt = 0.1
    sent: deque[float] = deque(maxlen=20)  # 2 s of send rates, as the relay meters it
    received_video: deque[float] = deque(maxlen=5)
    remb_kbps = CONFIG.initial_kbps
    queue_before = 0.0
    overflowed = False
    figures = []
    for step in range(1, int(seconds / dt) + 1):
        now = step * dt
        rate = estimator.estimate_kbps(audio_kbps, now)
        link.carry(rate, dt)
        overflowed = overflowed or link.overflowed
        sent.append(rate)
        carried = min(rate, link.capacity_kbps)
        received_video.append(max(0.0, carried - audio_kbps) * (0.3 if link.overflowed else 1.0))
        if step % 10 == 0:
            lost, rtt = link.report()
            estimator.on_report(lost, rtt, sum(sent) / len(sent), now)
            if with_remb:
                video = sum(received_video) / len(received_video)
                if overflowed or link.queued_kbit > queue_before + 1.0:
                    remb_kbps = 0.85 * video
                else:
                    remb_kbps = min(remb_kbps * 1.08, 1.5 * video + 10.0)
                estimator.on_remb(frozenset({1}), int(1000 * remb_kbps), now)
            queue_before, overflowed = link.queued_kbit, False
        if step % 5 == 0:
            figures.append((now, rate))
    return figures


@pytest.mark.parametrize("with_remb", [False, True], ids=["reports", "reports-and-remb"])
def test_a_120_kbps_bottleneck_with_a_300_ms_queue_settles_near_its_capacity(
    with_remb: bool,
) -> None:
    link = Bottleneck(capacity_kbps=120.0, queue_s=0.3, delay_s=0.15, loss=0.03)
    figures = estimates_on(link, 60.0, with_remb)
    settled = [kbps for at, kbps in figures if at >= 20.0]
    low, high = min(settled), max(settled)
    print(f"settled estimate {low:.0f}-{high:.0f} kbit/s on a 120 kbit/s link")
    assert 0.75 * 120.0 <= low and high <= 1.25 * 120.0, (low, high)
    # Not above the capacity again and again: the sawtooth stays under it but briefly.
    above = sum(1 for kbps in settled if kbps > 1.1 * 120.0)
    assert above <= len(settled) // 10, above


def test_a_remb_rise_is_followed_on_a_link_with_a_few_per_cent_random_loss() -> None:
    # 3 % random loss reads as 0 or 8 % a report of a dozen packets: the smoothed figure
    # crosses 5 % now and then, which is no congestion (no queue in the RTT).
    estimator = DownlinkEstimator(CONFIG, now=0.0)
    estimator.on_remb(frozenset({1}), 60_000, now=0.5)
    for second in range(1, 11):
        lost = 0.08 if second % 2 else 0.0
        estimator.on_report(lost, rtt_s=0.3, sent_kbps=110.0, now=float(second))
        estimator.on_remb(frozenset({1}), 100_000, now=second + 0.5)
    remb = estimator.remb_kbps(10.5)
    assert remb is not None and remb == pytest.approx(100.0), remb


def test_a_starved_remb_is_one_step_down_unless_the_server_sees_congestion_itself() -> None:
    estimator = DownlinkEstimator(CONFIG, now=0.0)
    for second in range(1, 5):
        estimator.on_report(0.0, rtt_s=0.3, sent_kbps=110.0, now=float(second))
    estimator.on_remb(frozenset({1}), 250_000, now=4.2)  # not below the rate: no signal
    before = estimator.estimate_kbps(40.0, 4.5)
    assert before == pytest.approx(CONFIG.initial_kbps)
    # The receiver measured a moment without video (frames dropped, a keyframe awaited); the
    # server sees no queue and no loss: one overuse signal, a step of 15 %, once an interval.
    estimator.on_remb(frozenset({1}), 8_000, now=5.0)
    assert estimator.estimate_kbps(40.0, 5.0) == pytest.approx(CONFIG.aimd_backoff * before)
    estimator.on_remb(frozenset({1}), 8_000, now=5.5)
    assert estimator.estimate_kbps(40.0, 5.5) == pytest.approx(CONFIG.aimd_backoff * before)
    # Over 10 % loss is congestion the server sees: the REMB is followed, down to what the
    # link delivered.
    estimator.on_report(0.5, rtt_s=0.3, sent_kbps=110.0, now=6.0)
    estimator.on_remb(frozenset({1}), 8_000, now=6.2)
    floor = CONFIG.aimd_backoff * 110.0 * (1 - 0.5)  # the report's own loss, not smoothed
    remb_total = 8.0 * (1 + CONFIG.video_overhead) + 40.0
    assert estimator.estimate_kbps(40.0, 6.2) == pytest.approx(max(floor, remb_total))
    # Without fresh reports the floor is no evidence of anything.
    later = 6.0 + CONFIG.evidence_max_age_s + 0.1
    assert estimator.estimate_kbps(40.0, later) == pytest.approx(remb_total)


async def test_a_measured_weak_downlink_starts_the_estimate_budgeted_and_paced_there() -> None:
    link = SubscriberLink(CONFIG, MediaMetrics(), keyframe_interval_s=1.0)
    try:
        link.seed_start(120.0, now=time.monotonic())
        start = CONFIG.seed_share * 120.0
        assert link.estimate_kbps == pytest.approx(start)
        assert link.estimator.constrained  # budgeted and paced from the first packet
        assert link.pacer.rate_kbps == pytest.approx(start * CONFIG.pace_factor)
        link.tick(time.monotonic())
        assert link.estimate_kbps == pytest.approx(start)
        # A faster link than the conservative start changes nothing, nor a later figure once
        # the subscriber has reported.
        fast = SubscriberLink(CONFIG, MediaMetrics(), keyframe_interval_s=1.0)
        fast.seed_start(5_000.0, now=time.monotonic())
        assert fast.estimate_kbps == CONFIG.initial_kbps and not fast.estimator.constrained
        link.on_report("video", 0.0, 0.3, None, time.monotonic())
        link.seed_start(60.0, now=time.monotonic())
        link.tick(time.monotonic())
        assert link.estimate_kbps >= start
        await fast.close()
    finally:
        await link.close()


def test_what_was_sent_is_no_floor_while_a_queue_grows() -> None:
    # A deep queue loses nothing for seconds: sent is not delivered then.
    estimator = DownlinkEstimator(CONFIG, now=0.0)
    for second in range(1, 4):
        estimator.on_report(0.0, rtt_s=0.05, sent_kbps=380.0, now=float(second))
    assert estimator.estimate_kbps(70.0, 3.0) >= CONFIG.aimd_backoff * 380.0
    for step, rtt in enumerate((0.25, 0.45, 0.65)):
        estimator.on_report(0.0, rtt_s=rtt, sent_kbps=380.0, now=4.0 + step)
    estimator.on_remb(frozenset({1}), 130_000, now=6.5)  # the receiver sees the queue too
    assert estimator.estimate_kbps(70.0, 6.5) < CONFIG.aimd_backoff * 380.0
