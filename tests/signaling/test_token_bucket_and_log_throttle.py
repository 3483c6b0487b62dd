"""The token bucket and the log throttle, on a hand-driven clock."""

from __future__ import annotations

import logging

import pytest

from signaling.log_throttle import LogThrottle
from signaling.token_bucket import KeyedBuckets, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate_per_s=2.0, burst=3, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.now += 0.5  # one token back
    assert [bucket.take(), bucket.take()] == [True, False]
    clock.now += 60  # never more than the burst
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_keyed_buckets_are_independent_and_bounded() -> None:
    clock = Clock()
    buckets: KeyedBuckets[str] = KeyedBuckets(1.0, 1, max_keys=2, clock=clock)
    assert buckets.take("a") and not buckets.take("a")
    assert buckets.take("b")
    assert buckets.take("c") and len(buckets) == 2  # "a", the least recent, was dropped
    buckets.forget("b")
    assert len(buckets) == 1


def test_bucket_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0, 1)


def test_throttle_passes_a_few_lines_per_kind_and_reports_what_it_held(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    logger = logging.getLogger("tests.throttle")
    throttle = LogThrottle(logger, per_interval=2, interval_s=10, clock=clock)
    with caplog.at_level(logging.INFO, logger="tests.throttle"):
        for i in range(5):
            throttle.log(logging.INFO, "flood", "line %d", i)
        throttle.log(logging.INFO, "other", "other kind")
        clock.now += 10
        throttle.log(logging.INFO, "flood", "line %d", 5)
    assert [r.getMessage() for r in caplog.records] == [
        "line 0",
        "line 1",
        "other kind",
        "line 5 (3 similar lines held back)",
    ]
