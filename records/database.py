"""The records database: engine, sessions and migrations for SQLite (embedded) or PostgreSQL.

``sqlite:///records.db`` (relative to the working directory) is the embedded default: WAL, a
busy timeout and foreign keys on every connection, and each write transaction taken with
``BEGIN IMMEDIATE`` so read-then-write steps (audit de-duplication, counters) are serialised
across processes. ``postgresql://`` uses asyncpg; such steps take a transaction-scoped advisory
lock (:meth:`RecordsDatabase.serialise`).
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, ProgrammingError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from records.errors import RecordsUnavailable

logger = logging.getLogger(__name__)

DEFAULT_RECORDS_URL = "sqlite:///records.db"
_SQLITE_BUSY_TIMEOUT_MS = 5000
_SQLITE_POOL_WAIT_S = 30.0
_PG_CONNECT_TIMEOUT_S = 5.0
_PG_COMMAND_TIMEOUT_S = 15.0
_CLOSE_WAIT_S = 5.0
_MIGRATIONS = Path(__file__).with_name("migrations")
# Reads that failed because the connection dropped are tried again this many times.
_READ_TRIES = 3
_READ_BACKOFF_S = 0.2

T = TypeVar("T")
# Driver errors that are not the database being unreachable (connection refused or reset, the
# server shutting down or restarting, a timeout): every other one is reported as unavailable.
_REQUEST_ERRORS = (IntegrityError, ProgrammingError, DataError)


def async_url(url: str) -> str:
    """The SQLAlchemy async URL for a configured one: ``sqlite:///f`` → aiosqlite,
    ``postgresql://`` → asyncpg; a URL already naming a driver is kept."""
    parsed = make_url(url)
    driver = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
    if parsed.drivername in driver:
        parsed = parsed.set(drivername=driver[parsed.drivername])
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported records database: {parsed.get_backend_name()!r}")
    return parsed.render_as_string(hide_password=False)


def redacted(url: str) -> str:
    """The URL without its password, for logs."""
    return make_url(url).render_as_string(hide_password=True)


class RecordsDatabase:
    """One engine and session factory; :meth:`upgrade` migrates, :meth:`close` disposes."""

    def __init__(self, url: str) -> None:
        self.url = async_url(url)
        self.dialect = make_url(self.url).get_backend_name()
        options: dict[str, Any] = {"pool_pre_ping": True}
        if self.dialect == "sqlite":
            # One connection: every transaction takes the write lock (BEGIN IMMEDIATE), so more
            # connections would only poll SQLite's lock; queued in the pool they wait in order.
            options.update(pool_size=1, max_overflow=0, pool_timeout=_SQLITE_POOL_WAIT_S)
            options["connect_args"] = {"timeout": _SQLITE_BUSY_TIMEOUT_MS / 1000}
        else:
            # A database that does not answer fails the request in seconds, not minutes.
            options["connect_args"] = {
                "timeout": _PG_CONNECT_TIMEOUT_S,
                "command_timeout": _PG_COMMAND_TIMEOUT_S,
            }
        self.engine: AsyncEngine = create_async_engine(self.url, **options)
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # Transactions under way: closing waits for them (a request still writing at shutdown
        # finishes before the engine goes, instead of its driver thread outliving the loop).
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False

    @property
    def sqlite_file(self) -> Path | None:
        """The SQLite database's file (``None`` for PostgreSQL or an in-memory database)."""
        database = make_url(self.url).database
        if self.dialect != "sqlite" or not database or database == ":memory:":
            return None
        return Path(database)

    async def upgrade(self) -> None:
        """Run the migrations up to the newest schema (idempotent; safe on every start)."""
        if self.sqlite_file is not None:
            self.sqlite_file.parent.mkdir(parents=True, exist_ok=True)
        async with self.engine.begin() as connection:
            await connection.run_sync(_upgrade_to, "head")

    async def migrate_to(self, revision: str) -> None:
        """Migrate to one revision (tests build the previous schema with it)."""
        async with self.engine.begin() as connection:
            await connection.run_sync(_upgrade_to, revision)

    async def revision(self) -> str | None:
        """The schema revision the database is at (``None`` when never migrated)."""
        async with self.engine.connect() as connection:
            return await connection.run_sync(_current_revision)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One short transaction: committed on success, rolled back on error; a dropped
        connection becomes :class:`RecordsUnavailable` (the write was not confirmed)."""
        if self._closed:
            raise RecordsUnavailable("the records database is closing")
        self._active += 1
        self._idle.clear()
        try:
            async with self.sessions.begin() as session:
                yield session
        except (DBAPIError, OSError, TimeoutError) as exc:
            if isinstance(exc, _REQUEST_ERRORS):
                raise  # the request's own fault (a constraint) or a bug: not an outage
            logger.warning("records database unavailable: %s", type(exc).__name__)
            raise RecordsUnavailable("the records database is unavailable") from exc
        finally:
            self._active -= 1
            if not self._active:
                self._idle.set()

    async def read(self, query: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run an idempotent read, tried again with back-off if the connection dropped."""
        for attempt in range(_READ_TRIES):
            try:
                async with self.transaction() as session:
                    return await query(session)
            except RecordsUnavailable:
                if attempt == _READ_TRIES - 1:
                    raise
                await asyncio.sleep(_READ_BACKOFF_S * 2**attempt)
        raise AssertionError("unreachable")

    async def serialise(self, session: AsyncSession, name: str) -> None:
        """Serialise this transaction with every other one naming ``name`` (PostgreSQL takes an
        advisory lock until commit; SQLite's ``BEGIN IMMEDIATE`` already serialises writers)."""
        if self.dialect == "postgresql":
            key = zlib.crc32(name.encode()) - 2**31
            await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    async def close(self) -> None:
        """Refuse new transactions, let those under way finish (a few seconds at most), then
        close every connection."""
        self._closed = True
        try:
            async with asyncio.timeout(_CLOSE_WAIT_S):
                await self._idle.wait()
        except TimeoutError:
            logger.warning("records database closed with %d transactions under way", self._active)
        await self.engine.dispose()


def _configure_sqlite(engine: AsyncEngine) -> None:
    """WAL, busy timeout and foreign keys per connection; ``BEGIN IMMEDIATE`` for transactions
    (pysqlite's own deferred BEGIN is turned off so SQLAlchemy's ``begin`` event emits it)."""

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _alembic_config(connection: Connection) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _upgrade_to(connection: Connection, revision: str) -> None:
    from alembic import command

    command.upgrade(_alembic_config(connection), revision)


def _current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()
