"""Temporal layer selection per subscriber (clock passed in, no peers): rates measured per
layer, the target chosen with hysteresis from the subscriber's share, the pause floor of
layered video, and what ``rtc.stats`` reports."""

from __future__ import annotations

import pytest

from media.congestion import CongestionConfig, LinkEvidence
from media.layer_rewriter import MAX_LAYER
from media.layer_selection import LayerRates, LayerSelector, video_floor_kbps
from media.pause_gate import GateState, PauseGate
from media.stats import forwarded_layer

CONFIG = CongestionConfig()
STEP_S = 0.5
# An L1T3 publisher at 600 kbit/s: 240 on TL0, 120 on TL1, 240 on TL2 (libwebrtc's split).
L1T3_KBPS = (240.0, 120.0, 240.0)


def measured(kbps: tuple[float, ...], seconds: float = 10.0) -> tuple[LayerRates, float]:
    """Rates after ``seconds`` of steady arrivals at ``kbps`` per layer; and the time then."""
    rates = LayerRates(CONFIG.layer_rate_window_s)
    now = 0.0
    rates.sample(now)
    while now < seconds:
        for layer, rate in enumerate(kbps):
            rates.on_packet(layer, int(rate * 1000 / 8 * STEP_S))
        now += STEP_S
        rates.sample(now)
    return rates, now


def test_rates_per_layer_and_the_top_layer() -> None:
    rates, _ = measured(L1T3_KBPS)
    assert rates.top_layer == 2
    assert rates.cumulative_kbps(0) == pytest.approx(240, rel=0.01)
    assert rates.cumulative_kbps(1) == pytest.approx(360, rel=0.01)
    assert rates.cumulative_kbps(2) == pytest.approx(600, rel=0.01)


def test_a_track_without_layers_has_no_top_layer_and_forgets_old_ones() -> None:
    assert LayerRates(2.0).top_layer is None
    rates, now = measured(L1T3_KBPS)
    for _ in range(3):  # only TL0 arrives now (an L1T1 publisher after a renegotiation)
        rates.on_packet(0, 10_000)
        now += 1.0
        rates.sample(now)
    assert rates.top_layer == 0
    now += 5.0
    rates.sample(now)
    assert rates.top_layer is None


def select(
    selector: LayerSelector, rates: LayerRates, timeline: list[tuple[float, float]]
) -> list[int]:
    return [selector.update(share, rates, at) for at, share in timeline]


def test_every_layer_goes_while_the_link_is_not_budgeted() -> None:
    rates, now = measured(L1T3_KBPS)
    assert LayerSelector(CONFIG).update(None, rates, now) == MAX_LAYER


def test_every_layer_goes_for_a_track_without_layers() -> None:
    assert LayerSelector(CONFIG).update(10.0, LayerRates(2.0), 0.0) == MAX_LAYER


@pytest.mark.parametrize(
    ("share", "layer"),
    [(1000.0, 2), (600.0, 2), (599.0, 1), (360.0, 1), (300.0, 0), (100.0, 0)],
)
def test_the_highest_layer_that_fits_the_share(share: float, layer: int) -> None:
    rates, now = measured(L1T3_KBPS)
    assert LayerSelector(CONFIG).update(share, rates, now) == layer


def test_down_at_once_up_after_a_hold_with_headroom() -> None:
    rates, now = measured(L1T3_KBPS)
    selector = LayerSelector(CONFIG)
    assert selector.update(300.0, rates, now) == 0
    # 360 fits TL1 exactly but leaves no headroom: no way up
    assert select(selector, rates, [(now + t, 370.0) for t in (1, 2, 3, 4)]) == [0, 0, 0, 0]
    up = 360.0 * CONFIG.layer_up_headroom + 1
    hold = CONFIG.layer_up_hold_s
    timeline = [(now + 5, up), (now + 5 + hold / 2, up), (now + 5 + hold, up)]
    assert select(selector, rates, timeline) == [0, 0, 1]
    # a dip during the hold starts it again
    top = 600.0 * CONFIG.layer_up_headroom + 1
    later = now + 10
    timeline = [(later, top), (later + 1, 400.0), (later + 2, top), (later + 2 + hold, top)]
    assert select(selector, rates, timeline) == [1, 1, 1, 2]
    assert selector.update(250.0, rates, later + 5) == 0  # straight down, two layers at once


def test_a_share_below_the_base_layer_still_selects_it() -> None:
    """Below TL0 there is nothing lower to choose: the pause gate decides (on its floor)."""
    rates, now = measured(L1T3_KBPS)
    assert LayerSelector(CONFIG).update(20.0, rates, now) == 0


def test_the_floor_is_the_lowest_video_rate_unless_every_stream_has_a_cheaper_base_layer() -> None:
    low = CONFIG.video_min_kbps
    assert video_floor_kbps([None], CONFIG) == low
    assert video_floor_kbps([10.0, None], CONFIG) == low
    assert video_floor_kbps([10.0, 15.0], CONFIG) == 25.0
    assert video_floor_kbps([400.0], CONFIG) == low  # never a pause sooner than without layers


def test_layered_video_pauses_only_below_its_floor_for_a_sustained_time() -> None:
    gate = PauseGate(CONFIG)
    clear = LinkEvidence()
    floor = 20.0
    room = 30.0  # below the lowest video rate, above the base layer's
    for step in range(20):
        assert gate.update(room, step * 0.5, clear, None, floor) is None
    assert gate.update(15.0, 10.0, clear, None, floor) is None
    assert gate.update(15.0, 10.0 + CONFIG.pause_hold_s, clear, None, floor) is GateState.PAUSED
    # without layers the same room pauses
    plain = PauseGate(CONFIG)
    plain.update(room, 0.0, clear)
    assert plain.update(room, CONFIG.pause_hold_s, clear) is GateState.PAUSED


@pytest.mark.parametrize(
    ("layers", "reported"),
    [([], None), ([None], "full"), ([2], "T2"), ([2, 0, None], "T0"), ([None, 1], "T1")],
)
def test_stats_report_the_lowest_layer_forwarded(
    layers: list[int | None], reported: str | None
) -> None:
    assert forwarded_layer(layers) == reported
