"""``teleconsult db``: the records database's operator commands.

``seed-demo`` fills an empty records database with a demonstration year of the programme (600
outlets, 100,000 consultations by default) sealed under the configured recording key, to try
the pages and time the dashboard (``teleconsult bench stats``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from records.demo_seed import DatabaseNotEmpty, DemoShape, seed_demo
from records.facade import Records
from web.recording_wiring import recording_keyring
from web.records_wiring import records_from
from web.settings import Settings, SettingsError

SettingsFrom = Callable[[argparse.Namespace], Settings]


def add_db_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], settings_from: SettingsFrom
) -> None:
    db = commands.add_parser("db", help="records database tools")
    actions = db.add_subparsers(dest="db_command", required=True)
    seed = actions.add_parser("seed-demo", help="fill an empty records database with a demo year")
    seed.add_argument("--config", type=Path, help="TOML file with settings")
    seed.add_argument("--records-url", help="records database (default: the configured one)")
    seed.add_argument("--outlets", type=int, default=DemoShape.outlets)
    seed.add_argument("--clinicians", type=int, default=DemoShape.clinicians)
    seed.add_argument("--consultations", type=int, default=DemoShape.consultations)
    seed.add_argument("--days", type=int, default=DemoShape.days)
    seed.add_argument("--end", help="the last day of the year seeded, YYYY-MM-DD (UTC)")
    seed.add_argument("--seed", type=int, default=1, help="random seed (same seed, same data)")
    seed.set_defaults(func=lambda args: _seed_demo(args, settings_from(args)))


def _seed_demo(args: argparse.Namespace, settings: Settings) -> int:
    if not (1 <= args.outlets <= 10_000 and 1 <= args.clinicians <= 2_000):
        print("teleconsult: 1-10000 outlets and 1-2000 clinicians", file=sys.stderr)
        return 2
    if not (1 <= args.consultations <= 2_000_000 and 1 <= args.days <= 3660):
        print("teleconsult: 1-2000000 consultations over 1-3660 days", file=sys.stderr)
        return 2
    end = datetime.fromisoformat(args.end).replace(tzinfo=UTC) if args.end else datetime.now(UTC)
    shape = DemoShape(args.outlets, args.clinicians, args.consultations, args.days, end, args.seed)
    try:
        keyring = recording_keyring(settings)
    except SettingsError as exc:
        print(f"teleconsult: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_seed(records_from(settings, keyring), shape))


async def _seed(records: Records, shape: DemoShape) -> int:
    began = time.perf_counter()
    await records.open()
    try:
        summary = await seed_demo(records, shape, lambda line: print(f"  {line}", flush=True))
    except DatabaseNotEmpty as exc:
        print(f"teleconsult: {exc}; seed an empty database", file=sys.stderr)
        return 1
    finally:
        await records.close()
    print(
        f"seeded {summary.visits} consultations of {summary.patients} children, "
        f"{summary.reports} reports, {summary.appointments} appointments "
        f"in {time.perf_counter() - began:.1f} s"
    )
    return 0
