"""``teleconsult bench stats``: how long the programme figures take on a seeded year.

Seeds a demonstration year (600 outlets, 100,000 consultations by default; ``teleconsult db
seed-demo``) into a fresh SQLite file, or uses ``--records-url`` (seeded first if it holds no
consultations; ``--key-file`` keeps the key it was sealed under, so it can be timed again), then
times each dashboard query ``--runs`` times: the whole year, the year by outlet, by service and
by clinician, one outlet's year, one month. The target is under 200 ms for each. Bounded: at
most 2,000,000 consultations and 20 runs per query.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from recording.keys import Keyring, add_key_to_file, read_key_file
from records.demo_seed import DemoShape, seed_demo
from records.facade import Records
from records.shares import ShareRules
from records.stats import StatsQuery, query_for_days
from records.tables import VisitRow

TARGET_MS = 200.0
MAX_RUNS = 20
ZONE = ZoneInfo("Asia/Shanghai")


def queries(last: date) -> dict[str, StatsQuery]:
    """The dashboard's queries over the year ending on ``last``."""
    first = last - timedelta(days=364)
    return {
        "year": query_for_days(first, last, ZONE),
        "year_by_outlet": query_for_days(first, last, ZONE, group_by="outlet"),
        "year_by_service": query_for_days(first, last, ZONE, group_by="service"),
        "year_by_clinician": query_for_days(first, last, ZONE, group_by="clinician"),
        "one_outlet_year": query_for_days(first, last, ZONE, outlet_id="outlet-007"),
        "one_month_by_outlet": query_for_days(
            last - timedelta(days=29), last, ZONE, group_by="outlet"
        ),
    }


def _keyring(key_file: Path) -> Keyring:
    """The keys in ``key_file``, a new one written there first when it is missing."""
    if not key_file.exists():
        add_key_to_file(key_file)
    keys = read_key_file(key_file)
    return Keyring.of(keys, keys[-1])


async def run(url: str, shape: DemoShape, runs: int, key_file: Path) -> dict[str, Any]:
    """Seed ``url`` when it holds no consultations (sealed under the key in ``key_file``,
    created when missing) and time the queries."""
    records = Records(
        url,
        _keyring(key_file),
        ShareRules(timedelta(days=30), 5, timedelta(minutes=15)),
    )
    await records.open()
    try:
        async with records.database.transaction() as session:
            present = await session.scalar(select(func.count()).select_from(VisitRow)) or 0
        seeded_s = None
        if not present:
            began = time.perf_counter()
            summary = await seed_demo(records, shape)
            seeded_s = time.perf_counter() - began
            present = summary.visits
        async with records.database.transaction() as session:
            newest = await session.scalar(select(func.max(VisitRow.checked_in_at)))
        last = (newest or datetime.now(UTC)).astimezone(ZONE).date()
        timings: dict[str, dict[str, float]] = {}
        for name, query in queries(last).items():
            await records.stats.figures(query)  # warm the cache, as a running server has it
            took = []
            for _ in range(runs):
                began = time.perf_counter()
                figures = await records.stats.figures(query)
                took.append((time.perf_counter() - began) * 1000)
            timings[name] = {
                "median_ms": round(statistics.median(took), 1),
                "max_ms": round(max(took), 1),
                "groups": len(figures["groups"]),
                "consultations": figures["totals"]["consultations"],
            }
        return {
            "engine": records.database.dialect,
            "consultations": present,
            "seeded_s": None if seeded_s is None else round(seeded_s, 1),
            "runs": runs,
            "target_ms": TARGET_MS,
            "queries": timings,
        }
    finally:
        await records.close()


def main(argv: list[str]) -> int:
    """Entry point for ``teleconsult bench stats``."""
    parser = argparse.ArgumentParser(
        prog="teleconsult bench stats", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--records-url", help="a records database (default: a fresh SQLite file)")
    parser.add_argument(
        "--key-file",
        type=Path,
        help="the records' key file, created when missing (default: a fresh key); the same "
        "file times a seeded --records-url again",
    )
    parser.add_argument("--outlets", type=int, default=DemoShape.outlets)
    parser.add_argument("--consultations", type=int, default=DemoShape.consultations)
    parser.add_argument(
        "--runs", type=int, default=5, help=f"timed runs per query (max {MAX_RUNS})"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    runs = min(max(args.runs, 1), MAX_RUNS)
    consultations = min(max(args.consultations, 1), 2_000_000)
    shape = DemoShape(outlets=args.outlets, consultations=consultations, end=datetime.now(UTC))
    with tempfile.TemporaryDirectory() as folder:
        url = args.records_url or f"sqlite:///{Path(folder) / 'records.db'}"
        key_file = args.key_file or Path(folder) / "records.keys"
        result = asyncio.run(run(url, shape, runs, key_file))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"{result['engine']}: {result['consultations']} consultations"
            + (f" (seeded in {result['seeded_s']} s)" if result["seeded_s"] else "")
        )
        for name, t in result["queries"].items():
            verdict = "ok" if t["max_ms"] < TARGET_MS else "OVER"
            print(
                f"  {name:22s} median {t['median_ms']:7.1f} ms  max {t['max_ms']:7.1f} ms  "
                f"groups {t['groups']:4d}  {verdict}"
            )
    slow = [n for n, t in result["queries"].items() if t["median_ms"] >= TARGET_MS]
    return 1 if slow else 0
