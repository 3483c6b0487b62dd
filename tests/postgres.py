"""A real PostgreSQL server for the tests: initdb in a temporary folder, run as the ``postgres``
user (PostgreSQL refuses root), listening on 127.0.0.1 only, stopped by its PID."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port


@dataclass
class PostgresServer:
    """A postgres process this test run started; ``url`` names a database ``records``."""

    port: int
    data: Path
    pid: int

    def url(self, database: str = "records") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        _as_postgres(
            [
                _binary("psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-c",
                f"CREATE DATABASE {name}",
            ]
        )
        return self.url(name)

    def stop(self, signum: int = signal.SIGINT) -> None:
        """Stop it (SIGINT: PostgreSQL's fast shutdown, which ends open connections)."""
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _alive(self.pid):
            time.sleep(0.05)

    def remove(self) -> None:
        """Stop and delete its folder."""
        self.stop()
        shutil.rmtree(self.data.parent, ignore_errors=True)

    def restart(self) -> None:
        """Stop (fast shutdown) and start again on the same port and folder."""
        self.stop()
        self.pid = _start(self.data, self.port)


def _binary(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        pytest.fail("PostgreSQL is not installed (.ci/run installs Debian's postgresql)")
    return found[-1]


def _as_postgres(command: list[str]) -> None:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=60)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _start(data: Path, port: int) -> int:
    _as_postgres(
        [
            _binary("pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(data / "server.log"),
            "-w",
            "-o",
            f"-p {port} -c listen_addresses=127.0.0.1 -k {data} -c fsync=off",
            "start",
        ]
    )
    pid = int((data / "postmaster.pid").read_text().split()[0])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return pid
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("postgres did not listen")


def start_postgres() -> PostgresServer:
    """initdb (trust auth on loopback) in a new folder under /tmp (the ``postgres`` user cannot
    enter pytest's root-only folders) and start; a database ``records`` is created."""
    tmp = Path(tempfile.mkdtemp(prefix="teleconsult-pg-"))
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres")
    data = tmp / "data"
    _as_postgres(
        [
            _binary("initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
        ]
    )
    port = free_port()
    server = PostgresServer(port, data, _start(data, port))
    server.create_database("records")
    return server
