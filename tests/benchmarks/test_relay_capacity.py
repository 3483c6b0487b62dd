"""The capacity search: doubling, then bisection, bounded in runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from benchmarks.relay_capacity import MAX_PROBES, Probe, capacity_lines, is_full, largest_full


def server_holding(limit: int) -> tuple[list[int], Callable[[int], Awaitable[Probe]]]:
    """A fake run: full frame rate up to ``limit`` consultations, 20 fps above."""
    asked: list[int] = []

    async def run(consultations: int) -> Probe:
        asked.append(consultations)
        return Probe(consultations, 29.6 if consultations <= limit else 20.0, 10.0, 20.0)

    return asked, run


def test_full_means_every_stream_at_95_percent_of_30_fps() -> None:
    assert is_full(28.5)
    assert not is_full(28.4)


@pytest.mark.parametrize("limit", [4, 5, 11, 12, 13, 23, 31])
async def test_finds_the_exact_limit_within_the_probe_bound(limit: int) -> None:
    asked, run = server_holding(limit)
    best, probes = await largest_full(run, start=4, bound=32)
    assert best == limit
    assert len(probes) <= MAX_PROBES
    assert [p.consultations for p in probes] == asked


async def test_doubles_first_then_bisects() -> None:
    asked, run = server_holding(11)
    await largest_full(run, start=2, bound=32)
    assert asked == [2, 4, 8, 16, 12, 10, 11]


async def test_none_when_the_start_already_falls_short_and_the_bound_caps_the_search() -> None:
    _, run = server_holding(1)
    best, probes = await largest_full(run, start=4, bound=32)
    assert best is None and [p.consultations for p in probes] == [4]
    _, run = server_holding(100)
    best, probes = await largest_full(run, start=4, bound=32)
    assert best == 32 and [p.consultations for p in probes] == [4, 8, 16, 32]
    found, tried = capacity_lines("relay", best, probes, 32)
    assert "at least 32 (the benchmark's bound)" in found
    assert "4: 29.6 fps, server 10 %, load 20 %; 8: 29.6 fps" in tried


async def test_stops_at_the_probe_bound_with_the_best_full_run_so_far() -> None:
    asked, run = server_holding(13)
    best, probes = await largest_full(run, start=1, bound=32, max_probes=5)
    assert asked == [1, 2, 4, 8, 16]
    assert best == 8


async def test_a_run_that_broke_off_counts_as_not_full() -> None:
    async def run(consultations: int) -> Probe:
        if consultations >= 8:
            return Probe(consultations, 0.0, 0.0, 0.0, failure="TimeoutError")
        return Probe(consultations, 30.0, 10.0, 20.0)

    best, probes = await largest_full(run, start=4, bound=32)
    assert best == 7
    assert "8: failed (TimeoutError)" in capacity_lines("nodes", best, probes, 32)[1]
