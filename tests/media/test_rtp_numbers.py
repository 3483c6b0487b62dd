from __future__ import annotations

import pytest

from media.rtp_numbers import seq_add, seq_diff, timestamp_add, timestamp_diff


@pytest.mark.parametrize(
    ("sequence", "delta", "expected"),
    [(0, 1, 1), (65535, 1, 0), (65530, 10, 4), (0, -1, 65535), (5, -10, 65531), (100, 0, 100)],
)
def test_seq_add_wraps_both_ways(sequence: int, delta: int, expected: int) -> None:
    assert seq_add(sequence, delta) == expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (10, 5, 5),
        (5, 10, -5),
        (2, 65534, 4),  # across the wrap, a is newer
        (65534, 2, -4),
        (32767, 0, 32767),
        (32768, 0, -32768),  # exactly half way counts as older
        (7, 7, 0),
    ],
)
def test_seq_diff_takes_the_short_way_round(a: int, b: int, expected: int) -> None:
    assert seq_diff(a, b) == expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (90_000, 0, 90_000),
        (0, 90_000, -90_000),
        (1_000, 2**32 - 2_000, 3_000),
        (2**32 - 2_000, 1_000, -3_000),
    ],
)
def test_timestamp_diff_is_signed_across_the_wrap(a: int, b: int, expected: int) -> None:
    assert timestamp_diff(a, b) == expected


def test_timestamp_add_wraps() -> None:
    assert timestamp_add(2**32 - 1, 3_000) == 2_999
    assert timestamp_add(0, -1) == 2**32 - 1
