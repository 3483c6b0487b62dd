"""What to ask a publisher for: the cap its subscribers set, smoothed, and REMB pacing.

Pure logic with the clock passed in; :mod:`media.upstream` sends the REMB and the control loop
(:mod:`media.control`) sets each cap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from media.congestion import CongestionConfig


@dataclass(frozen=True)
class CapTarget:
    """The video rate to ask a publisher for, and the subscribers whose shares set it."""

    kbps: float
    voters: frozenset[str]


def publisher_cap(
    shares_kbps: Mapping[str, float],
    config: CongestionConfig,
    base_fraction: float | None = None,
) -> CapTarget | None:
    """The cap for a published stream from its active subscribers' video shares (by id).

    The lowest share, leaving out the outvoted (under ``outvoted_ratio`` of the best: served by
    dropping frames rather than lowering everyone), times ``publisher_headroom`` so that a
    keyframe or an encoder overshoot fits the subscriber's budget without dropping frames.
    With temporal layers (``base_fraction``: the base layer's part of the stream's rate), a
    subscriber below the best whose share carries the base layer at the rate the best sets is
    served by a lower layer instead, and does not vote either. ``None`` when nobody is
    subscribed.
    """
    if not shares_kbps:
        return None
    best = max(shares_kbps.values())
    layers_serve = (
        best if base_fraction is None else base_fraction * config.publisher_headroom * best
    )
    kept = {
        who: share
        for who, share in shares_kbps.items()
        if share >= config.outvoted_ratio * best and (share == best or share < layers_serve)
    }
    lowest = config.publisher_headroom * min(kept.values())
    return CapTarget(max(config.video_min_kbps, lowest), frozenset(kept))


class CapSmoother:
    """Follows a cap down at once and up by at most ``cap_increase_per_s`` a second.

    Except when the rise comes from a subscriber ceasing to vote (paused, outvoted or gone)
    while every remaining voter voted before: their shares were measured, not probed, so the
    cap returns to them at once. Otherwise a weak guest who pulled the cap down on its way to
    a pause would hold the others' video low for many seconds after it.
    """

    def __init__(self, config: CongestionConfig) -> None:
        self._config = config
        self._value: float | None = None
        self._voters: frozenset[str] = frozenset()
        self._at = 0.0

    def update(self, target: CapTarget | None, now: float) -> float | None:
        if target is None:
            self._value = None
        elif (
            self._value is None
            or target.kbps <= self._value
            or (target.voters and target.voters < self._voters)
        ):
            self._value = target.kbps
        else:
            growth = 1.0 + self._config.cap_increase_per_s * max(0.0, now - self._at)
            self._value = min(target.kbps, self._value * growth)
        self._voters = frozenset() if target is None else target.voters
        self._at = now
        return self._value


class RembPacer:
    """When to send a REMB: at once on a drop of 3 % or more (every 0.2 s at most), else 1/s."""

    def __init__(self) -> None:
        self._last: tuple[float, float] | None = None

    def should_send(self, bps: float, now: float) -> bool:
        if self._last is None:
            return True
        value, at = self._last
        elapsed = now - at
        return elapsed >= 1.0 or (bps < 0.97 * value and elapsed >= 0.2)

    def sent(self, bps: float, now: float) -> None:
        self._last = (bps, now)
