"""A real ``teleconsult serve`` in its own process (signals, kills), stopped by its PID only."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from rooms.roles import Role
from rooms.tasks import within
from signaling.auth import TokenAuthority
from tests.conftest import TEST_SECRET, free_port


@dataclass
class ServerProcess:
    """The server process, its URL and a token minter (what :class:`Cast` needs of a server)."""

    process: asyncio.subprocess.Process
    port: int
    authority: TokenAuthority

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def token(self, role: Role, subject: str, **kwargs: Any) -> str:
        return self.authority.issue(role, subject, **kwargs)

    async def stop(self, signum: int, within_s: float = 30.0) -> tuple[float, str]:
        """Send ``signum``; returns the seconds until the process exited and its output."""
        sent = time.monotonic()
        self.process.send_signal(signum)
        output, _ = await within(self.process.communicate(), within_s)
        return time.monotonic() - sent, output.decode(errors="replace")

    async def ensure_stopped(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.communicate()


def records_url_beside(recordings: Path) -> str:
    """The SQLite records database a test server keeps beside its recordings folder."""
    return f"sqlite:///{recordings.parent / 'records.db'}"


async def spawn_server(
    recordings: Path, *args: str, env: dict[str, str] | None = None
) -> ServerProcess:
    """Start ``teleconsult serve`` on a free loopback port and wait until /healthz answers;
    ``env`` adds ``TELECONSULT_*`` settings. Its records database is ``records.db`` beside the
    recordings folder unless ``--records-url`` is among ``args``."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "web.cli",
        "serve",
        "--port",
        str(port),
        "--media-ip",
        "127.0.0.1",
        "--recordings",
        str(recordings),
        *([] if "--records-url" in args else ["--records-url", records_url_beside(recordings)]),
        *args,
        env={**os.environ, "TELECONSULT_SECRET": TEST_SECRET, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    server = ServerProcess(process, port, TokenAuthority(TEST_SECRET))
    async with aiohttp.ClientSession() as session:
        for _ in range(150):
            if process.returncode is not None:
                break
            try:
                async with session.get(f"{server.url}/healthz") as response:
                    if response.status == 200:
                        return server
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
    if server.process.returncode is None:
        server.process.kill()
    output, _ = await server.process.communicate()
    raise AssertionError(
        f"the server process did not start: {output.decode(errors='replace')[-2000:]}"
    )
