"""What a page received over a window, from timed ``media_snapshot`` samples (getStats counters).

Counters are cumulative, so every figure is a difference between samples; a peer connection
that restarts resets them, which shows up as a stall rather than as negative figures.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from benchmarks.browser_call import PageHandle, media_snapshot


@dataclass(frozen=True)
class Sample:
    """One snapshot of a page's counters at ``at`` (monotonic seconds)."""

    at: float
    snapshot: dict[str, Any]

    def value(self, kind: str, counter: str) -> float:
        return float(self.snapshot[kind][counter])


async def sample_media(
    handle: PageHandle,
    seconds: float,
    participant_id: str | None = None,
    interval_s: float = 0.5,
) -> list[Sample]:
    """Snapshots of ``handle`` every ``interval_s`` for ``seconds`` (at least two)."""
    samples: list[Sample] = []
    deadline = time.monotonic() + seconds
    while True:
        samples.append(Sample(time.monotonic(), await media_snapshot(handle, participant_id)))
        if time.monotonic() >= deadline and len(samples) >= 2:
            return samples
        await asyncio.sleep(interval_s)


def _delta(first: Sample, last: Sample, kind: str, counter: str) -> float:
    return max(0.0, last.value(kind, counter) - first.value(kind, counter))


def fps_per_second(samples: list[Sample]) -> list[float]:
    """Frames decoded in each whole second of the window (interpolated between samples)."""
    rates: list[float] = []
    start = samples[0]
    for sample in samples[1:]:
        if sample.at - start.at >= 1.0:
            rates.append(_delta(start, sample, "video", "frames") / (sample.at - start.at))
            start = sample
    return rates


def longest_stall_s(samples: list[Sample]) -> float:
    """Longest time between samples that show a new decoded frame (the sampling interval when
    video never stops; an upper bound at that resolution)."""
    longest = 0.0
    last_progress = samples[0]
    for previous, sample in zip(samples, samples[1:], strict=False):
        if sample.value("video", "frames") > previous.value("video", "frames"):
            longest = max(longest, sample.at - last_progress.at)
            last_progress = sample
    return max(longest, samples[-1].at - last_progress.at)


def loss_pct(samples: list[Sample], kind: str) -> float:
    lost = _delta(samples[0], samples[-1], kind, "lost")
    received = _delta(samples[0], samples[-1], kind, "packets")
    return 100.0 * lost / (lost + received) if lost + received else 0.0


def concealment_pct(samples: list[Sample]) -> float:
    """Share of received audio samples that were concealed (made up for lost packets)."""
    total = _delta(samples[0], samples[-1], "audio", "samples")
    return 100.0 * _delta(samples[0], samples[-1], "audio", "concealed") / total if total else 0.0


def received_kbps(samples: list[Sample], kinds: tuple[str, ...] = ("video", "audio")) -> float:
    seconds = samples[-1].at - samples[0].at
    payload = sum(
        _delta(samples[0], samples[-1], kind, counter)
        for kind in kinds
        for counter in ("bytes", "headerBytes")
    )
    return payload * 8 / 1000 / seconds if seconds > 0 else 0.0


def retransmitted_pct(samples: list[Sample]) -> float | None:
    """Retransmitted share of received video bytes (None if the browser does not count it)."""
    if samples[-1].value("video", "retransmittedBytes") == 0:
        return None
    total = _delta(samples[0], samples[-1], "video", "bytes")
    retransmitted = _delta(samples[0], samples[-1], "video", "retransmittedBytes")
    return 100.0 * retransmitted / total if total else 0.0


def sent_kbps(samples: list[Sample]) -> float:
    seconds = samples[-1].at - samples[0].at
    sent = _delta(samples[0], samples[-1], "sent", "bytes")
    return sent * 8 / 1000 / seconds if seconds > 0 else 0.0


def sent_resolution(samples: list[Sample]) -> str:
    """The median sent frame size over the window, e.g. ``640x480``."""
    widths = [s.value("sent", "width") for s in samples]
    heights = [s.value("sent", "height") for s in samples]
    return f"{statistics.median(widths):.0f}x{statistics.median(heights):.0f}"


def sent_fps(samples: list[Sample]) -> float:
    """The median frame rate the sender reported over the window."""
    return float(statistics.median(s.value("sent", "fps") for s in samples))


def sent_limitation(samples: list[Sample]) -> str:
    """Why the sender's browser limited its video most of the window (cpu, bandwidth or none)."""
    reasons = Counter(str(s.snapshot["sent"]["limitation"]) for s in samples)
    return reasons.most_common(1)[0][0]


def paused_s(samples: list[Sample]) -> float:
    """Time the page showed the weak-connection notice (sampling resolution)."""
    return sum(
        later.at - sample.at
        for sample, later in zip(samples, samples[1:], strict=False)
        if sample.snapshot.get("paused")
    )
