"""A TCP relay on 127.0.0.1 whose client-to-server direction is paced at a fixed rate, shared by
all its connections: a weak uplink for what a page sends over HTTP and WebSocket (a photo
upload), beside :mod:`benchmarks.link_emulator`, which shapes the UDP media.

Every connection to the relay's port is relayed to ``127.0.0.1:target_port``; the bytes going
to the server wait for a shared token bucket of ``capacity_kbps`` (answers come back unpaced).
Each relayed connection is tracked and closed with the relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

from benchmarks._processes import free_port

_READ_BYTES = 4096


@dataclass
class Pacer:
    """A token bucket in bytes, shared by the relay's connections (``None``: not paced)."""

    bytes_per_s: float | None
    _next_free: float = 0.0
    sent: int = 0

    async def take(self, size: int) -> None:
        self.sent += size
        if self.bytes_per_s is None:
            return
        now = time.monotonic()
        start = max(now, self._next_free)
        self._next_free = start + size / self.bytes_per_s
        if start > now:
            await asyncio.sleep(start - now)


class TcpShaper:
    """``async with TcpShaper(port, 250) as shaper``: ``shaper.url`` reaches the server.

    ``capacity_kbps=None`` relays unpaced until :meth:`limit` (a page's own network check can
    then run on the open path, and the weak uplink starts when the test or benchmark says)."""

    def __init__(self, target_port: int, capacity_kbps: float | None) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.pacer = Pacer(None)
        self.limit(capacity_kbps)

    def limit(self, capacity_kbps: float | None) -> None:
        """Pace what goes to the server at ``capacity_kbps`` from now on (``None``: unpaced)."""
        self.pacer.bytes_per_s = None if capacity_kbps is None else capacity_kbps * 1000 / 8
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> TcpShaper:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is None:
            return
        self._server.close()
        # Closing both ends of every relayed connection ends its pumps (and its handler).
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        try:
            await asyncio.gather(
                _pump(reader, up_writer, self.pacer), _pump(up_reader, writer, None)
            )
        finally:
            for end in (writer, up_writer):
                end.close()
                self._writers.discard(end)


async def _pump(
    source: asyncio.StreamReader, sink: asyncio.StreamWriter, pacer: Pacer | None
) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await source.read(_READ_BYTES):
            if pacer is not None:
                await pacer.take(len(data))
            sink.write(data)
            await sink.drain()
    with contextlib.suppress(ConnectionError, OSError, RuntimeError):
        sink.write_eof()
