"""A Redis primary, its replicas and three sentinels on 127.0.0.1, started and stopped by PID.

Used by the failover tests and ``bench soak --store sentinel``. The timers are short (the
primary is judged down after ``down_after_ms``), so a failover takes seconds, not a minute.
Nothing is persisted: the processes live in a temporary folder for one run. :class:`Secured`
adds passwords (the servers', the sentinels') and TLS on every port.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

SERVICE = "mymaster"
QUORUM = 2
_START_S = 30.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Daemon:
    """One redis-server (primary, replica or sentinel) this process started."""

    role: str
    port: int
    process: subprocess.Popen[bytes]


@dataclass(frozen=True)
class Secured:
    """Passwords and TLS for every process of a setup; ``tls_cert`` (for 127.0.0.1) is also
    the CA everything verifies against."""

    server_password: str | None = None
    sentinel_password: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None

    def tls_lines(self, port: int) -> list[str]:
        """Configuration lines: the port, TLS only on it when there is a certificate."""
        if self.tls_cert is None or self.tls_key is None:
            return [f"port {port}"]
        return [
            "port 0",
            f"tls-port {port}",
            f"tls-cert-file {self.tls_cert}",
            f"tls-key-file {self.tls_key}",
            f"tls-ca-cert-file {self.tls_cert}",
            "tls-replication yes",
            "tls-auth-clients no",
        ]


@dataclass
class SentinelSetup:
    """The processes of one Sentinel deployment on loopback; :attr:`url` is what nodes use."""

    workdir: Path
    replicas: int = 1
    sentinels: int = 3
    down_after_ms: int = 1000
    failover_timeout_ms: int = 3000
    secured: Secured = field(default_factory=Secured)
    servers: list[Daemon] = field(default_factory=list)
    watchers: list[Daemon] = field(default_factory=list)

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.watchers)
        password = self.secured.server_password
        return f"redis+sentinel://{f':{password}@' if password else ''}{hosts}/0/{SERVICE}"

    @contextlib.asynccontextmanager
    async def _client(self, port: int) -> AsyncIterator[redis.Redis]:
        """An admin connection to one of this setup's processes."""
        sentinel = any(w.port == port for w in self.watchers)
        secured = self.secured
        password = secured.sentinel_password if sentinel else secured.server_password
        tls: dict[str, Any] = {}
        if secured.tls_cert is not None:
            tls = {"ssl": True, "ssl_ca_certs": str(secured.tls_cert)}
        client = redis.Redis(
            host="127.0.0.1",
            port=port,
            password=password,
            decode_responses=True,
            socket_timeout=2.0,
            **tls,
        )
        try:
            yield client
        finally:
            await client.aclose()

    async def start(self) -> None:
        """Primary, then its replicas (in sync), then the sentinels (each seeing the replicas
        and the other sentinels): ready for a failover when this returns."""
        binary = shutil.which("redis-server")
        if binary is None or shutil.which("redis-sentinel") is None:
            raise RuntimeError("redis-server and redis-sentinel are needed (apt redis-sentinel)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        primary = self._server(binary, "primary", [])
        await self._until_pong(primary.port)
        for _ in range(self.replicas):
            follow = ["--replicaof", "127.0.0.1", str(primary.port)]
            port = self._server(binary, "replica", follow).port
            await self._until(functools.partial(self._linked, port), "a replica to sync")
        for index in range(self.sentinels):
            self.watchers.append(self._sentinel(binary, index, primary.port))
        await self._until(self._sentinels_ready, "the sentinels to see each other and the replicas")

    def _server(self, binary: str, role: str, extra: list[str]) -> Daemon:
        port = _free_port()
        folder = self.workdir / f"{role}-{port}"
        folder.mkdir()
        lines = [*self.secured.tls_lines(port), "bind 127.0.0.1", 'save ""', "appendonly no"]
        lines.append(f"dir {folder}")
        if self.secured.server_password:
            lines += [f"requirepass {self.secured.server_password}"]
            lines += [f"masterauth {self.secured.server_password}"]
        config = folder / "redis.conf"
        config.write_text("\n".join(lines) + "\n")
        command = [binary, str(config), *extra]
        daemon = Daemon(role, port, self._spawn(command, folder / "redis.log"))
        self.servers.append(daemon)
        return daemon

    def _sentinel(self, binary: str, index: int, primary_port: int) -> Daemon:
        port = _free_port()
        folder = self.workdir / f"sentinel-{index}"
        folder.mkdir()
        config = folder / "sentinel.conf"
        lines = [*self.secured.tls_lines(port), "bind 127.0.0.1", f"dir {folder}"]
        lines += [
            f"sentinel monitor {SERVICE} 127.0.0.1 {primary_port} {QUORUM}",
            f"sentinel down-after-milliseconds {SERVICE} {self.down_after_ms}",
            f"sentinel failover-timeout {SERVICE} {self.failover_timeout_ms}",
            f"sentinel parallel-syncs {SERVICE} 1",
        ]
        if self.secured.server_password:
            lines.append(f"sentinel auth-pass {SERVICE} {self.secured.server_password}")
        if self.secured.sentinel_password:
            lines.append(f"requirepass {self.secured.sentinel_password}")
            lines.append(f"sentinel sentinel-pass {self.secured.sentinel_password}")
        config.write_text("\n".join(lines) + "\n")
        command = [binary, str(config), "--sentinel"]
        return Daemon("sentinel", port, self._spawn(command, folder / "sentinel.log"))

    @staticmethod
    def _spawn(command: list[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as output:
            return subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)

    async def _until(
        self, check: Callable[[], Awaitable[bool]], what: str, within_s: float = _START_S
    ) -> None:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            with contextlib.suppress(RedisError, OSError):
                if await check():
                    return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"timed out waiting for {what} (logs in {self.workdir})")

    async def _until_pong(self, port: int) -> None:
        async def pong() -> bool:
            async with self._client(port) as client:
                return bool(await client.ping())

        await self._until(pong, "redis-server to start")

    async def _linked(self, port: int) -> bool:
        async with self._client(port) as client:
            info = await client.info("replication")
        return bool(info.get("master_link_status") == "up")

    async def _sentinels_ready(self) -> bool:
        for watcher in self.watchers:
            async with self._client(watcher.port) as client:
                state: Any = await client.sentinel_master(SERVICE)
            if int(state["num-slaves"]) < self.replicas:
                return False
            if int(state["num-other-sentinels"]) < self.sentinels - 1:
                return False
        return True

    async def _named_primary(self, sentinel_port: int) -> int:
        async with self._client(sentinel_port) as client:
            address: Any = await client.sentinel_get_master_addr_by_name(SERVICE)
        return int(address[1])

    async def primary_port(self) -> int:
        """The primary's port as the first sentinel that answers names it."""
        for watcher in self.watchers:
            with contextlib.suppress(RedisError, OSError):
                return await self._named_primary(watcher.port)
        raise RuntimeError("no sentinel answers")

    async def kill_primary(self) -> Daemon:
        """SIGKILL the current primary (by its PID); returns it."""
        port = await self.primary_port()
        (primary,) = [s for s in self.servers if s.port == port]
        primary.process.send_signal(signal.SIGKILL)
        primary.process.wait(timeout=10)
        return primary

    async def wait_promotion(self, old_port: int, within_s: float = 30.0) -> int:
        """Until every sentinel names a primary other than ``old_port``; returns its port."""
        promoted: list[int] = []

        async def switched() -> bool:
            ports = {await self._named_primary(watcher.port) for watcher in self.watchers}
            promoted[:] = list(ports)
            return len(ports) == 1 and old_port not in ports

        await self._until(switched, "the sentinels to promote a replica", within_s)
        return promoted[0]

    def stop(self) -> None:
        """Stop every process this setup started, by PID (sentinels first: no failover then)."""
        for daemon in [*self.watchers, *self.servers]:
            if daemon.process.poll() is None:
                daemon.process.terminate()
        for daemon in [*self.watchers, *self.servers]:
            try:
                daemon.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                daemon.process.kill()
                daemon.process.wait()
