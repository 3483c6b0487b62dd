"""``teleconsult bench relay --capacity``: the most 1:1 consultations a server holds at full
frame rate.

"Full" means every forwarded video stream (each subscriber's) delivered at least 95 % of the
clip's 30 fps over the measuring window (its minimum, not its median). The search doubles the
consultations from a start until a run falls short (or the bound is reached), then bisects
between the last full run and the first short one; at most ``MAX_PROBES`` runs. Without
``--workers`` the load runs against the bare relay process (as ``bench relay`` does); with
``--workers N`` (1 or 2) against the full server as N nodes on one Redis (``teleconsult serve
--workers N`` starts N such nodes behind one port; here each node has its own).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from benchmarks._load import FPS

FULL_FRACTION = 0.95
MAX_PROBES = 8


def is_full(fps_min: float) -> bool:
    """Whether the slowest video stream still ran at full frame rate."""
    return fps_min >= FULL_FRACTION * FPS


@dataclass(frozen=True)
class Probe:
    """One run: consultations, the slowest video stream's frame rate, and the server's CPU
    (% of one core, all its processes) and the load process's, to tell whether the server ran
    out of CPU."""

    consultations: int
    fps_min: float
    server_cpu_pct: float
    load_cpu_pct: float
    failure: str | None = None  # the run broke off: it did not hold these consultations

    @property
    def full(self) -> bool:
        return self.failure is None and is_full(self.fps_min)


async def largest_full(
    run: Callable[[int], Awaitable[Probe]],
    start: int,
    bound: int,
    max_probes: int = MAX_PROBES,
) -> tuple[int | None, list[Probe]]:
    """The most consultations (``start``..``bound``) ``run`` holds at full frame rate, and the
    probes made; ``None`` if even ``start`` fell short. ``run(n)`` measures ``n``
    consultations."""
    probes: list[Probe] = []

    async def probe(consultations: int) -> bool:
        probes.append(await run(consultations))
        return probes[-1].full

    if not await probe(start):
        return None, probes
    best, failed = start, None
    while failed is None and best < bound and len(probes) < max_probes:
        trial = min(best * 2, bound)
        if await probe(trial):
            best = trial
        else:
            failed = trial
    while failed is not None and failed - best > 1 and len(probes) < max_probes:
        trial = (best + failed) // 2
        if await probe(trial):
            best = trial
        else:
            failed = trial
    return best, probes


def capacity_lines(label: str, best: int | None, probes: list[Probe], bound: int) -> list[str]:
    """What the search found, and every probe."""
    tried = "; ".join(
        f"{p.consultations}: failed ({p.failure})"
        if p.failure is not None
        else f"{p.consultations}: {p.fps_min:g} fps, server {p.server_cpu_pct:g} %, "
        f"load {p.load_cpu_pct:g} %"
        for p in probes
    )
    if best is None:
        found = "none at full frame rate"
    elif best >= bound:
        found = f"at least {best} (the benchmark's bound)"
    else:
        found = str(best)
    return [
        f"{label}: {found} consultations at >= {FULL_FRACTION:.0%} of {FPS} fps on every "
        f"video stream",
        f"  probes (consultations: slowest stream, CPU of one core): {tried}",
    ]
