"""The per-packet cost benchmark's figures: medians per round, over rounds, and paired ratios."""

from __future__ import annotations

from benchmarks.packet_cost import packet_median_us, paired_ratios, summary


def test_a_rounds_packet_figure_is_its_median_in_microseconds() -> None:
    assert packet_median_us([30_000, 90_000, 31_000]) == 31.0
    assert packet_median_us([]) is None


def test_figures_over_rounds_are_medians_and_skip_rounds_without_one() -> None:
    rows = [
        {"video_packet_us": 30.0, "audio_packet_us": None},
        {"video_packet_us": 50.0, "audio_packet_us": 20.0},
        {"video_packet_us": 32.0, "audio_packet_us": 22.0},
    ]
    assert summary(rows) == {"video_packet_us": 32.0, "audio_packet_us": 21.0}


def test_ratios_pair_each_round_with_the_first_trees_same_round() -> None:
    first = [
        {"video_packet_us": 40.0, "audio_packet_us": 20.0},
        {"video_packet_us": 20.0, "audio_packet_us": 10.0},
        {"video_packet_us": 30.0, "audio_packet_us": 15.0},
    ]
    # A slow round (the first) is slow for both trees: the ratio stays 0.5 throughout.
    other = [
        {"video_packet_us": 20.0, "audio_packet_us": 30.0},
        {"video_packet_us": 10.0, "audio_packet_us": 15.0},
        {"video_packet_us": 15.0, "audio_packet_us": None},
    ]
    assert paired_ratios(other, first) == {"video_packet_us": 0.5, "audio_packet_us": 1.5}
