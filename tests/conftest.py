"""Shared fixtures: a real redis-server, a running teleconsult app, token helpers."""

from __future__ import annotations

import itertools
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
import redis.asyncio as redis
from aiohttp import web

from benchmarks._sentinel import SentinelSetup
from recording.keys import Keyring
from records.database import DEFAULT_RECORDS_URL
from records.facade import Records
from records.shares import ShareRules
from rooms.roles import Role
from rooms.store import Store, create_store
from signaling.auth import TokenAuthority
from tests.coturn import Coturn, start_coturn
from web.app import create_app
from web.settings import Settings

if TYPE_CHECKING:
    from tests.postgres import PostgresServer

TEST_SECRET = "test-secret-" + "x" * 40
TEST_METRICS_TOKEN = "test-metrics-" + "m" * 40
TEST_SHARE_RULES = ShareRules(timedelta(days=30), 5, timedelta(seconds=60))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RedisServer:
    """A redis-server process this test session started, stopped by its PID."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def start_redis(tmp: Path, port: int | None = None, durable: bool = False) -> RedisServer:
    """A redis-server on 127.0.0.1; ``durable`` keeps every write in an AOF in ``tmp`` (fsync
    always), so one restarted on the same port and folder has everything back."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (.ci/run installs it with apt-get)")
    port = port or free_port()
    persistence = ["--appendonly", "yes", "--appendfsync", "always"] if durable else []
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            *persistence,
            "--dir",
            str(tmp),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return RedisServer(port, process)
        except OSError:
            time.sleep(0.05)
    process.kill()
    pytest.fail("redis-server did not start")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.process.terminate()
    server.process.wait(timeout=10)


@pytest.fixture
async def sentinel_setup(tmp_path: Path) -> AsyncIterator[SentinelSetup]:
    """A primary, one replica and three sentinels of this test's own (a failover test kills
    the primary), ready for a failover; every process stopped by its PID afterwards."""
    if shutil.which("redis-sentinel") is None:
        pytest.fail("redis-sentinel is not installed (.ci/run installs it with apt-get)")
    setup = SentinelSetup(tmp_path / "sentinel")
    try:
        await setup.start()
        yield setup
    finally:
        setup.stop()


async def flush_redis(url: str) -> None:
    """Empty the test Redis database, so a test starts from no state of another."""
    client = redis.Redis.from_url(url)
    await client.flushdb()
    await client.aclose()


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """A fresh store on each backend: memory, and the real Redis server (flushed first).

    A module or test limits the backends with ``parametrize("store", [...], indirect=True)``.
    """
    url = None
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        await flush_redis(server.url)
        url = server.url
    backend = create_store(url)
    yield backend
    await backend.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server shared by the test run (each test gets its own database)."""
    from tests.postgres import start_postgres

    server = start_postgres()
    yield server
    server.remove()


_databases = itertools.count()


@pytest.fixture(params=["sqlite", "postgres"])
def records_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty records database on each engine: an SQLite file, and a new database on
    the real PostgreSQL server. A test limits the engines with ``parametrize(..., indirect)``."""
    if request.param == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        return server.create_database(f"records_{os.getpid()}_{next(_databases)}")
    return f"sqlite:///{tmp_path / 'records.db'}"


async def open_records(url: str, keyring: Keyring | None = None) -> Records:
    """The records facades, opened (migrated) on ``url`` with a fresh key unless one is given."""
    opened = Records(url, keyring or Keyring.of([], secrets.token_bytes(32)), TEST_SHARE_RULES)
    await opened.open()
    return opened


@pytest.fixture
async def records(records_url: str) -> AsyncIterator[Records]:
    """The records facades, opened (migrated) on a fresh database of each engine."""
    opened = await open_records(records_url)
    yield opened
    await opened.close()


@pytest.fixture
async def local_records(tmp_path: Path) -> AsyncIterator[Records]:
    """The records facades on an SQLite file only (for tests of other parts that need them)."""
    opened = await open_records(f"sqlite:///{tmp_path / 'local-records.db'}")
    yield opened
    await opened.close()


@pytest.fixture
def test_settings(tmp_path: Path) -> Settings:
    return Settings(
        records_url=f"sqlite:///{tmp_path / 'records.db'}",
        secret=TEST_SECRET,
        port=free_port(),
        media_ips=("127.0.0.1",),
        recordings_dir=tmp_path / "recordings",
        offer_timeout_s=2.0,
        rejoin_grace_s=2.0,
        empty_room_grace_s=2.0,
        presence_timeout_s=2.0,
        metrics_token=TEST_METRICS_TOKEN,
    )


@pytest.fixture
def authority() -> TokenAuthority:
    return TokenAuthority(TEST_SECRET)


@dataclass
class RunningServer:
    """An app served on 127.0.0.1 by this test, with helpers to mint tokens."""

    app: web.Application
    runner: web.AppRunner
    settings: Settings
    authority: TokenAuthority

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}"

    def token(self, role: Role, subject: str, **kwargs: Any) -> str:
        return self.authority.issue(role, subject, **kwargs)

    async def metrics_text(self) -> str:
        """The Prometheus exposition of this server, read with its metrics token."""
        headers = {"Authorization": f"Bearer {self.settings.metrics_token}"}
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{self.url}/metrics", headers=headers) as response:
                response.raise_for_status()
                return await response.text()


async def start_server(settings: Settings) -> RunningServer:
    """Serve ``settings`` on 127.0.0.1; a records database left at its default (a file in the
    working directory) is put beside the recordings folder instead."""
    if settings.records_url == DEFAULT_RECORDS_URL:
        beside = settings.recordings_dir.resolve().parent / "records.db"
        settings = replace(settings, records_url=f"sqlite:///{beside}")
    app = create_app(settings)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", settings.port)
    await site.start()
    return RunningServer(app, runner, settings, TokenAuthority(settings.secret))


@pytest.fixture
async def server(test_settings: Settings) -> AsyncIterator[RunningServer]:
    running = await start_server(test_settings)
    yield running
    await running.runner.cleanup()


@pytest.fixture
def with_store(test_settings: Settings, redis_server: RedisServer) -> Any:
    """Settings using the real Redis server (flushed) instead of memory."""
    return replace(test_settings, store_url=redis_server.url)


@pytest.fixture(scope="session")
def coturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coturn]:
    """A real coturn turnserver on 127.0.0.1 (UDP, TCP and TLS), shared by the test run."""
    server = start_coturn(tmp_path_factory.mktemp("coturn"))
    yield server
    server.stop()
