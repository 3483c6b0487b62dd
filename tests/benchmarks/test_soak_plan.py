"""The soak benchmark spreads each kind of visit evenly, so every minute carries the same work."""

from __future__ import annotations

import pytest

from benchmarks.soak import _every


@pytest.mark.parametrize(("fraction", "phase"), [(0.2, 0.0), (0.15, 0.5), (0.1, 0.25), (0.0, 0.0)])
def test_a_trait_goes_to_its_fraction_of_every_window_of_visits(
    fraction: float, phase: float
) -> None:
    marks = [_every(n, fraction, phase) for n in range(2000)]
    assert sum(marks) == round(2000 * fraction)
    # Any 70 consecutive visits (about a minute of the default load) hold the same share,
    # give or take one visit.
    per_window = {sum(marks[start : start + 70]) for start in range(0, 2000 - 70)}
    assert max(per_window) - min(per_window) <= 1
    assert min(per_window) >= int(70 * fraction)


def test_phases_keep_traits_of_equal_fraction_apart() -> None:
    drops = {n for n in range(200) if _every(n, 0.1, 0.25)}
    reconnects = {n for n in range(200) if _every(n, 0.1, 0.75)}
    assert drops and reconnects and not drops & reconnects
