"""Table tests of one subscriber's RTP numbering: each case is a run of packets with the clock
time each arrives at, and the numbers the subscriber must see (``None``: dropped)."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from media.rtp_rewriter import BASE_REFRESH, RESYNC_GAP, RewrittenNumbers, RtpRewriter

START_SEQ = 1_000
START_TS = 50_000
VIDEO = 90_000
AUDIO = 48_000


class FixedStart(random.Random):
    """Gives the first start's "random" sequence number and timestamp, in that order."""

    def __init__(self, sequence: int, timestamp: int) -> None:
        super().__init__(0)
        self._values = [sequence, timestamp]
        self.bounds: list[int] = []

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:
        self.bounds.append(start if stop is None else stop)
        return self._values.pop(0)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Step:
    """A packet arriving at ``at`` seconds; ``start``: it begins a (re)start (a keyframe)."""

    at: float
    seq: int
    ts: int
    expect: tuple[int, int] | None
    start: bool = False
    resync: bool = False
    clock_rate: int = VIDEO


def run(steps: list[Step], start: tuple[int, int] = (START_SEQ, START_TS)) -> list[object]:
    clock = Clock()
    rewriter = RtpRewriter(clock, FixedStart(*start))
    seen: list[object] = []
    for step in steps:
        clock.now = step.at
        if step.start:
            rewriter.rebase(step.seq, step.ts, step.clock_rate, step.resync)
        numbers = rewriter.rewrite(step.seq, step.ts)
        seen.append(None if numbers is None else tuple(numbers))
    return seen


CASES: dict[str, list[Step]] = {
    "first packet takes the random start": [
        Step(0.0, 40_000, 123_456, (START_SEQ, START_TS), start=True),
    ],
    "nothing passes before the first start": [
        Step(0.0, 40_000, 123_456, None),
        Step(0.0, 40_001, 123_456, None),
        Step(0.1, 40_002, 126_456, (START_SEQ, START_TS), start=True),
    ],
    "continuation keeps the publisher's spacing": [
        Step(0.0, 40_000, 123_456, (START_SEQ, START_TS), start=True),
        Step(0.0, 40_001, 123_456, (START_SEQ + 1, START_TS)),
        Step(0.033, 40_002, 126_456, (START_SEQ + 2, START_TS + 3_000)),
        Step(0.033, 40_005, 129_456, (START_SEQ + 5, START_TS + 6_000)),  # a loss stays a gap
    ],
    "reordered packets keep their place": [
        Step(0.0, 40_000, 0, (START_SEQ, START_TS), start=True),
        Step(0.0, 40_002, 0, (START_SEQ + 2, START_TS)),
        Step(0.0, 40_001, 0, (START_SEQ + 1, START_TS)),
        Step(0.0, 40_003, 0, (START_SEQ + 3, START_TS)),
    ],
    "a late packet does not move the stream back": [
        Step(0.0, 40_000, 0, (START_SEQ, START_TS), start=True),
        Step(0.5, 40_003, 45_000, (START_SEQ + 3, START_TS + 45_000)),
        Step(1.0, 40_002, 40_000, (START_SEQ + 2, START_TS + 40_000)),
        # resumes after the newest (40_003, sent at 0.5 s), not after the late one
        Step(2.0, 9_000, 7, (START_SEQ + 4, START_TS + 45_000 + 135_000), start=True),
    ],
    "packets older than the start are dropped": [
        Step(0.0, 40_000, 0, (START_SEQ, START_TS), start=True),
        Step(0.0, 39_999, 0, None),
        Step(0.0, 39_000, 0, None),
        Step(0.0, 40_001, 0, (START_SEQ + 1, START_TS)),
    ],
    "the publisher's sequence wraps": [
        Step(0.0, 65_534, 0, (START_SEQ, START_TS), start=True),
        Step(0.0, 65_535, 0, (START_SEQ + 1, START_TS)),
        Step(0.0, 0, 0, (START_SEQ + 2, START_TS)),
        Step(0.0, 1, 0, (START_SEQ + 3, START_TS)),
        Step(0.0, 65_533, 0, None),  # before the start, across the wrap
    ],
    "the publisher's timestamp wraps": [
        Step(0.0, 10, 2**32 - 1_000, (START_SEQ, START_TS), start=True),
        Step(0.033, 11, 2_000, (START_SEQ + 1, START_TS + 3_000)),
    ],
    "a rejoin with new numbering continues the old stream": [
        Step(0.0, 40_000, 0, (START_SEQ, START_TS), start=True),
        Step(0.25, 40_001, 22_500, (START_SEQ + 1, START_TS + 22_500)),
        Step(2.75, 7, 3_000_000_000, (START_SEQ + 2, START_TS + 22_500 + 225_000), start=True),
        Step(2.75, 40_002, 45_000, None),  # a straggler of the first connection
        Step(2.8, 8, 3_000_004_500, (START_SEQ + 3, START_TS + 22_500 + 225_000 + 4_500)),
    ],
    "a resume after a pause keeps the pause in the timestamps (audio clock)": [
        Step(0.0, 500, 0, (START_SEQ, START_TS), start=True, clock_rate=AUDIO),
        Step(0.5, 501, 24_000, (START_SEQ + 1, START_TS + 24_000), clock_rate=AUDIO),
        Step(
            2.0, 900, 0, (START_SEQ + 2, START_TS + 24_000 + 72_000), start=True, clock_rate=AUDIO
        ),
    ],
    "a restart at the same instant still moves the timestamp on": [
        Step(0.0, 500, 0, (START_SEQ, START_TS), start=True),
        Step(0.0, 900, 0, (START_SEQ + 1, START_TS + 1), start=True),
    ],
    "a resync skips the gap": [
        Step(0.0, 40_000, 0, (START_SEQ, START_TS), start=True),
        Step(0.25, 40_010, 0, (START_SEQ + 10, START_TS)),
        Step(
            0.5,
            40_100,
            9,
            (START_SEQ + 11 + RESYNC_GAP, START_TS + 22_500),
            start=True,
            resync=True,
        ),
        Step(0.5, 40_101, 9, (START_SEQ + 12 + RESYNC_GAP, START_TS + 22_500)),
    ],
    "a resync on the first start has nothing to skip": [
        Step(0.0, 40_000, 0, (START_SEQ, START_TS), start=True, resync=True),
    ],
}


@pytest.mark.parametrize("name", list(CASES))
def test_rewriting(name: str) -> None:
    steps = CASES[name]
    assert run(steps) == [step.expect for step in steps]


def test_the_subscriber_numbering_wraps() -> None:
    steps = [
        Step(0.0, 100, 4_000, (65_534, 2**32 - 1_500), start=True),
        Step(0.033, 101, 7_000, (65_535, 1_500)),
        Step(0.066, 102, 10_000, (0, 4_500)),
        Step(0.066, 103, 10_000, (1, 4_500)),
    ]
    assert run(steps, start=(65_534, 2**32 - 1_500)) == [step.expect for step in steps]


def test_the_first_start_is_random_in_the_lower_half() -> None:
    source = FixedStart(START_SEQ, START_TS)
    RtpRewriter(Clock(), source).rebase(1, 1, VIDEO)
    assert source.bounds == [1 << 15, 1 << 32]
    starts = set()
    for _ in range(20):
        rewriter = RtpRewriter()
        rewriter.rebase(1, 1, VIDEO)
        numbers = rewriter.rewrite(1, 1)
        assert numbers is not None and numbers.sequence < 1 << 15
        starts.add(numbers)
    assert len(starts) > 1


@pytest.mark.parametrize("publisher_start", [0, 30_000, 65_000])
def test_a_long_run_refreshes_the_base(publisher_start: int) -> None:
    """Over twice the sequence space: without a moving base fresh packets would look old."""
    rewriter = RtpRewriter(Clock(), FixedStart(START_SEQ, START_TS))
    rewriter.rebase(publisher_start, 0, VIDEO)
    for i in range(3 * 65_536):
        sequence = (publisher_start + i) % 65_536
        numbers = rewriter.rewrite(sequence, i)
        assert numbers == RewrittenNumbers((START_SEQ + i) % 65_536, START_TS + i), i
        if i % 1_000 == 999:  # a straggler well behind the newest still passes
            late = (sequence - 500) % 65_536
            assert rewriter.rewrite(late, 0) is not None, i
    newest = (publisher_start + 3 * 65_536 - 1) % 65_536
    # just behind the (refreshed) base is from before it: dropped
    assert rewriter.rewrite((newest - BASE_REFRESH - 1) % 65_536, 0) is None


def test_last_sent_follows_the_newest_packet() -> None:
    rewriter = RtpRewriter(Clock(), FixedStart(START_SEQ, START_TS))
    assert not rewriter.started and rewriter.last_sent is None
    rewriter.rebase(10, 0, VIDEO)
    rewriter.rewrite(10, 0)
    rewriter.rewrite(12, 6_000)
    rewriter.rewrite(11, 3_000)
    assert rewriter.started
    assert rewriter.last_sent == RewrittenNumbers(START_SEQ + 2, START_TS + 6_000)


@pytest.mark.parametrize("resync", [False, True])
def test_a_rebase_gives_the_number_the_restart_packet_gets(resync: bool) -> None:
    rewriter = RtpRewriter(Clock(), FixedStart(65_000, START_TS))
    assert rewriter.rebase(10, 0, VIDEO) == 65_000
    assert rewriter.rewrite(10, 0) == RewrittenNumbers(65_000, START_TS)
    resumes_at = rewriter.rebase(500, 9_000, VIDEO, resync=resync)
    assert resumes_at == (65_001 + (RESYNC_GAP if resync else 0)) % 65_536
    numbers = rewriter.rewrite(500, 9_000)
    assert numbers is not None and numbers.sequence == resumes_at
