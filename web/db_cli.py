"""``teleconsult db``: the records database's operator commands.

``upgrade`` migrates it to the newest schema (the server also does at every start);
``import-redis`` copies the audit trail and recording index an earlier version kept in the
Redis store (once; the server also does at start on a Redis store).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

from records.database import redacted
from records.redis_import import import_from_redis
from web.recording_wiring import recording_keyring
from web.records_wiring import records_from
from web.settings import Settings, SettingsError

SettingsFrom = Callable[[argparse.Namespace], Settings]


def add_db_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], settings_from: SettingsFrom
) -> None:
    db = commands.add_parser("db", help="records database: upgrade, import-redis")
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
