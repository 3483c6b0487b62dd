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
import threading
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
        # Connections out of the pool and SQLite's driver threads: closing waits for both.
        self._threads = _DriverThreads()
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", self._threads.add)
        self._checked_out = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False
        event.listen(self.engine.sync_engine, "checkout", self._on_checkout)
        event.listen(self.engine.sync_engine, "checkin", self._on_checkin)

    def _on_checkout(self, *_: Any) -> None:
        self._checked_out += 1
        self._idle.clear()

    def _on_checkin(self, *_: Any) -> None:
        self._checked_out -= 1
        if not self._checked_out:
            self._idle.set()

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
        try:
            async with self.sessions.begin() as session:
                yield session
        except (DBAPIError, OSError, TimeoutError) as exc:
            if isinstance(exc, _REQUEST_ERRORS):
                raise  # the request's own fault (a constraint) or a bug: not an outage
            logger.warning("records database unavailable: %s", type(exc).__name__)
            raise RecordsUnavailable("the records database is unavailable") from exc

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
        """Refuse new transactions, wait until every connection is back in the pool (those
        under way finish or roll back; a few seconds at most), then close them all."""
        self._closed = True
        deadline = asyncio.get_running_loop().time() + _CLOSE_WAIT_S
        try:
            async with asyncio.timeout_at(deadline):
                await self._idle.wait()
        except TimeoutError:
            logger.warning("records database closed with %d connections in use", self._checked_out)
        await self.engine.dispose()
        await self._threads.ended(deadline)


class _DriverThreads:
    """aiosqlite's worker threads, one per connection. SQLAlchemy terminates a connection whose
    task was cancelled mid-query: aiosqlite then stops it only after the work already queued,
    and its thread reports that work's end into the event loop. Closing waits for the threads,
    so none reports into a loop that has closed meanwhile (an error in that thread)."""

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []

    def add(self, dbapi_connection: Any, _record: Any) -> None:
        """Keep a new connection's thread (aiosqlite holds it privately; if it no longer does,
        nothing is kept and closing does not wait)."""
        thread = getattr(dbapi_connection.driver_connection, "_thread", None)
        if isinstance(thread, threading.Thread):
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]

    async def ended(self, deadline: float) -> None:
        """Until every thread has ended, or the loop's clock reaches ``deadline``."""
        loop = asyncio.get_running_loop()
        for thread in self._threads:
            await asyncio.to_thread(thread.join, max(0.0, deadline - loop.time()))
        self._threads = [t for t in self._threads if t.is_alive()]
        if self._threads:
            logger.warning("records database closed with %d threads busy", len(self._threads))


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
