"""The REMB a publisher gets (media.upstream): aiortc's own estimate, not below a share of the
rate the stream arrived at lately, and capped by the subscribers."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from media.aiortc_adapter import ForwardingReceiver
from media.congestion import CongestionConfig
from media.publisher_cap import CapTarget
from media.upstream import ArrivalPeak, PublisherFeedback

CONFIG = CongestionConfig()


@dataclass(eq=False)
class FakeReceiver:
    """What PublisherFeedback uses of a ForwardingReceiver."""

    uplink_loss: float = 0.0
    media_ssrc: int | None = 1234
    listener: Callable[[int, list[int]], None] | None = None
    sent: list[int] = field(default_factory=list)

    def on_remb(self, listener: Callable[[int, list[int]], None] | None) -> None:
        self.listener = listener

    async def send_remb(self, bitrate_bps: int, ssrcs: list[int]) -> None:
        self.sent.append(bitrate_bps)


def spawn(job: Coroutine[Any, Any, Any]) -> None:
    job.close()


def test_arrival_peak_is_the_highest_rate_over_its_window() -> None:
    peak = ArrivalPeak(window_s=10.0)
    peak.update(0, 0.0)
    assert peak.kbps == 0.0
    peak.update(12_500, 0.5)  # 200 kbit/s
    peak.update(18_750, 1.0)  # 100 kbit/s
    assert peak.kbps == pytest.approx(200.0)
    peak.update(25_000, 11.0)  # 5 kbit/s, and the 200 has left the window
    assert peak.kbps == pytest.approx(100.0)


def test_a_collapsing_own_estimate_stops_at_a_share_of_what_the_uplink_carried() -> None:
    receiver = FakeReceiver()
    feedback = PublisherFeedback(CONFIG, spawn)
    forwarding = cast(ForwardingReceiver, receiver)
    feedback.add_stream(forwarding)
    assert receiver.listener is not None
    received = 0
    for step in range(1, 21):  # 10 s at 180 kbit/s
        received += 180_000 // 8 // 2
        feedback.set_received(forwarding, received, step * 0.5)
    receiver.uplink_loss = 0.08  # lossy: aiortc's drops are followed
    receiver.listener(300_000, [1234])
    assert feedback.value_bps() == 300_000
    receiver.listener(32_000, [1234])  # after step after step of its own decreases
    assert feedback.value_bps() == pytest.approx(CONFIG.aimd_backoff * 180_000, rel=0.01)
    # The subscribers' cap still bounds it.
    feedback.set_cap(forwarding, CapTarget(100.0, frozenset({"dr-li"})), 10.5)
    assert feedback.value_bps() == 100_000
