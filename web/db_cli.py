"""``teleconsult db``: the records database's operator commands.

``upgrade`` migrates it to the newest schema (the server also does at every start);
``import-redis`` copies the audit trail and recording index an earlier version kept in the
Redis store (once; the server also does at start on a Redis store).
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

from records.database import redacted
from records.demo_seed import DatabaseNotEmpty, DemoShape, seed_demo
from records.facade import Records
from records.redis_import import import_from_redis
from web.recording_wiring import recording_keyring
from web.records_wiring import records_from
from web.settings import Settings, SettingsError

SettingsFrom = Callable[[argparse.Namespace], Settings]


def add_db_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], settings_from: SettingsFrom
) -> None:
    db = commands.add_parser("db", help="records database: upgrade, import-redis, seed-demo")
    actions = db.add_subparsers(dest="db_command", required=True)

    upgrade = actions.add_parser(
        "upgrade", help="migrate the records database to the newest schema"
    )
    _common(upgrade)
    upgrade.set_defaults(func=lambda args: _run(args, settings_from, _upgrade))

    imported = actions.add_parser(
        "import-redis", help="copy the audit trail and recording index from a Redis store, once"
    )
    _common(imported)
    imported.add_argument(
        "--store", required=True, help="the Redis store URL: redis://host:port/db"
    )
    imported.set_defaults(func=lambda args: _run(args, settings_from, _import))

    seed = actions.add_parser("seed-demo", help="fill an empty records database with a demo year")
    _common(seed)
    seed.add_argument("--outlets", type=int, default=DemoShape.outlets)
    seed.add_argument("--clinicians", type=int, default=DemoShape.clinicians)
    seed.add_argument("--consultations", type=int, default=DemoShape.consultations)
    seed.add_argument("--days", type=int, default=DemoShape.days)
    seed.add_argument("--end", help="the last day of the year seeded, YYYY-MM-DD (UTC)")
    seed.add_argument("--seed", type=int, default=1, help="random seed (same seed, same data)")
    seed.set_defaults(func=lambda args: _run(args, settings_from, _seed_demo))


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML file with settings")
    parser.add_argument(
        "--records-url", help="records database URL (default: sqlite:///records.db)"
    )


def _run(
    args: argparse.Namespace,
    settings_from: SettingsFrom,
    action: Callable[[argparse.Namespace, Settings], int],
) -> int:
    try:
        settings = settings_from(args)
        return action(args, settings)
    except SettingsError as exc:
        print(f"teleconsult: {exc}", file=sys.stderr)
        return 2


def _upgrade(args: argparse.Namespace, settings: Settings) -> int:
    async def upgrade() -> str | None:
        records = records_from(settings, recording_keyring(settings))
        try:
            await records.open()
            return await records.database.revision()
        finally:
            await records.close()

    revision = asyncio.run(upgrade())
    print(f"records database {redacted(settings.records_url)} is at revision {revision}")
    return 0


def _import(args: argparse.Namespace, settings: Settings) -> int:
    async def run() -> dict[str, int] | None:
        records = records_from(settings, recording_keyring(settings))
        try:
            await records.open()
            return await import_from_redis(records.database, args.store, settings.redis_options())
        finally:
            await records.close()

    summary = asyncio.run(run())
    if summary is None:
        print("already imported: nothing done")
    else:
        print(
            f"imported {summary['audit_events']} audit entries and {summary['recordings']} "
            "recording index entries"
        )
    return 0


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
