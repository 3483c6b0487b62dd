"""``teleconsult check-config``: validate a production configuration without starting the server.

Every check is one small function in :data:`CHECKS`; each returns what it found (one line) or
raises :class:`~web.settings.SettingsError` with the reason. All checks run, so one pass shows
every problem; the command exits 1 if any failed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TextIO
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as redis
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from records.database import RecordsDatabase
from records.database import redacted as records_redacted
from rooms.redis_connection import connect, is_redis_url
from web.recording_wiring import recording_keyring
from web.settings import Settings, SettingsError, check_secret

STORE_TIMEOUT_S = 5.0


async def check_production(settings: Settings) -> str:
    if not settings.production:
        raise SettingsError(
            "production is off: set production = true (it refuses weak secrets and a missing "
            "recording key at start)"
        )
    return "on"


async def check_token_secret(settings: Settings) -> str:
    if not settings.secret:
        raise SettingsError("no secret: set TELECONSULT_SECRET or secret = ... (32+ random bytes)")
    check_secret(settings.secret, "the secret")
    if settings.metrics_token is not None:
        check_secret(settings.metrics_token, "metrics_token")
    return f"{len(settings.secret.encode())} bytes"


async def check_media_and_nodes(settings: Settings) -> str:
    settings.check_ice()
    settings.check_nodes()
    return f"ice_transport_policy {settings.ice_transport_policy}, {settings.workers} worker(s)"


async def check_public_url(settings: Settings) -> str:
    if settings.public_url is None:
        return "unset: Socket.IO accepts the server's own origin (or allowed_origins)"
    parts = urlsplit(settings.public_url)
    host = parts.hostname or ""
    if parts.scheme != "https" or not host:
        # Browsers give pages camera and microphone only in a secure context.
        raise SettingsError(f"public_url {settings.public_url!r} must be an https:// address")
    if host.rsplit(".", 2)[-2:-1] == ["example"]:
        raise SettingsError(f"public_url {settings.public_url!r} is the example: use your own name")
    return settings.public_url


async def check_recording_keys(settings: Settings) -> str:
    # As in production: never generate a development key file while checking.
    keyring = recording_keyring(replace(settings, production=True))
    return f"{len(keyring.keys)} key(s), current key id {keyring.current_id}"


async def check_recordings_dir(settings: Settings) -> str:
    folder = settings.recordings_dir.resolve()
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise SettingsError(f"recordings_dir: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise SettingsError(f"recordings_dir: {existing} is not writable by this user")
    return str(folder) if existing == folder else f"{folder} (will be created)"


async def check_store(settings: Settings) -> str:
    url = settings.store_url
    if not url or url == "memory://":
        return "in memory (one process; consultations are lost on restart)"
    if not is_redis_url(url):
        scheme = urlsplit(url).scheme
        raise SettingsError(
            f"store_url: unsupported scheme {scheme!r} (redis://, rediss://, redis+sentinel://)"
        )
    client = connect(
        url,
        settings.redis_options(),
        connect_timeout_s=STORE_TIMEOUT_S,
        command_timeout_s=STORE_TIMEOUT_S,
    )
    try:
        async with asyncio.timeout(STORE_TIMEOUT_S):
            await client.ping()
    except (redis.RedisError, OSError, TimeoutError) as exc:
        reason = str(exc) or type(exc).__name__
        raise SettingsError(f"store_url {redacted(url)}: {reason}") from exc
    finally:
        await client.aclose()
    return f"{redacted(url)} answers PING"


async def check_records(settings: Settings) -> str:
    """The records database answers (the server migrates it at start; nothing is written): an
    SQLite file that does not exist yet is only checked for a folder it can be created in."""
    try:
        database = RecordsDatabase(settings.records_url)
    except (ValueError, ImportError) as exc:
        raise SettingsError(f"records_url: {exc}") from exc
    file = database.sqlite_file
    if file is not None and not file.exists():
        await database.close()
        existing = next(p for p in file.parents if p.exists())
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise SettingsError(f"records_url: {file.parent} cannot be created by this user")
        return f"{file} (will be created at first start)"
    try:
        async with database.engine.connect() as connection:
            async with asyncio.timeout(STORE_TIMEOUT_S):
                await connection.execute(text("SELECT 1"))
        revision = await database.revision()
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SettingsError(
            f"records_url {records_redacted(settings.records_url)}: {reason}"
        ) from exc
    finally:
        await database.close()
    state = f"schema {revision}" if revision else "empty (migrated at first start)"
    return f"{records_redacted(settings.records_url)} answers, {state}"


def redacted(url: str) -> str:
    """``url`` without its password (Redis URLs carry it)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


@dataclass(frozen=True)
class Check:
    """One thing a production configuration needs, with the function that checks it."""

    name: str
    run: Callable[[Settings], Awaitable[str]]


CHECKS: tuple[Check, ...] = (
    Check("production", check_production),
    Check("secret", check_token_secret),
    Check("public address", check_public_url),
    Check("media and nodes", check_media_and_nodes),
    Check("recording keys", check_recording_keys),
    Check("recordings folder", check_recordings_dir),
    Check("store", check_store),
    Check("records database", check_records),
)


async def run_checks(settings: Settings, out: TextIO, checks: tuple[Check, ...] = CHECKS) -> int:
    """Run every check, print one line each; 0 when all passed, else 1."""
    failed = 0
    for check in checks:
        try:
            found = await check.run(settings)
        except SettingsError as exc:
            failed += 1
            print(f"FAIL  {check.name}: {exc}", file=out)
        else:
            print(f"ok    {check.name}: {found}", file=out)
    print(f"{len(checks) - failed} of {len(checks)} checks passed", file=out)
    return 1 if failed else 0
