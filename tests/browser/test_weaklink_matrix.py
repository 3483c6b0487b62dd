"""``bench weaklink --matrix``'s calls in real Chromium, briefly: one profile through the server
and direct gives real figures (frames counted, the first picture timed) and a verdict."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser

from benchmarks.matrix_calls import direct_run, relay_run
from benchmarks.weaklink_matrix import PROFILES, PathRun, targets

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]

WINDOW_S = 3.0


async def test_one_profile_gives_real_figures_on_both_paths(browser: Browser) -> None:
    baseline = PROFILES[0]
    relay = PathRun("relay", await relay_run(browser, baseline, 0.0, WINDOW_S))
    direct = PathRun("direct", await direct_run(browser, baseline, 0.0, WINDOW_S))
    for run in (relay, direct):
        assert len(run.views) == 1, run
        seen = run.views[0]
        assert (seen.receiver, seen.sender, seen.phase) == ("kiosk", "specialist", ""), run
        assert seen.fps_median > 0 and seen.received_kbps > 0, run
        assert seen.first_frame_s is not None and 0 < seen.first_frame_s < 30, run
        assert 0 <= seen.longest_freeze_s <= WINDOW_S + 0.5, run
    verdicts = targets(baseline, relay, direct)
    assert len(verdicts) == 4 and all(isinstance(met, bool) for met in verdicts.values())
