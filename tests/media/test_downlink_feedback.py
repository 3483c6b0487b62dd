"""A resync's numbering gap is not reported as loss, however many receiver reports come before
the one that holds it."""

from __future__ import annotations

from typing import Any

import pytest

from media.congestion import CongestionConfig
from media.downlink import DownlinkFeedback, SubscriberLink
from media.metrics import MediaMetrics


def feedback_and_figures() -> tuple[DownlinkFeedback, list[float | None]]:
    link = SubscriberLink(CongestionConfig(), MediaMetrics(), keyframe_interval_s=1.0)
    figures: list[float | None] = []

    def noting(kind: str, fraction_lost: float | None, *rest: Any) -> None:
        figures.append(fraction_lost)

    link.on_report = noting  # type: ignore[method-assign]
    return DownlinkFeedback(link, "video", lambda: None), figures


@pytest.mark.parametrize(
    ("last_before", "resumes_at", "cycles"),
    [(2_000, 3_101, 0), (64_900, 465, 1 << 16)],  # the gap inside and across the wrap
)
def test_loss_is_left_out_up_to_the_report_that_holds_the_gap(
    last_before: int, resumes_at: int, cycles: int
) -> None:
    feedback, figures = feedback_and_figures()
    feedback.on_report(0.02, 0.05, last_before - 10)
    feedback.skip_gap(resumes_at)
    # Reports about packets from before the gap (say, three NACKs' compound reports while the
    # restart's keyframe is still paced out) ...
    for _ in range(3):
        feedback.on_report(0.0, 0.05, last_before)
    # ... then the one whose interval holds the gap, read by the receiver as 90 % loss ...
    feedback.on_report(0.9, 0.05, cycles + resumes_at + 5)
    # ... and the next ones count again.
    feedback.on_report(0.01, 0.05, cycles + resumes_at + 60)
    assert figures == [0.02, None, None, None, None, 0.01]


def test_without_a_gap_every_report_counts() -> None:
    feedback, figures = feedback_and_figures()
    for highest, lost in [(100, 0.0), (150, 0.3), (200, 0.1)]:
        feedback.on_report(lost, 0.05, highest)
    assert figures == [0.0, 0.3, 0.1]
