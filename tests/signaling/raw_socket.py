"""Test helper: a raw Engine.IO v4 / Socket.IO v5 client over a websocket, to send the frames a
well-behaved client library never would (binary packets, reserved names, garbage)."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from typing import Any

import aiohttp

WAIT_S = 5.0
_ACK = re.compile(r"^43(\d+)")


class RawSocket:
    """One websocket to ``/socket.io/``; answers engine.io pings so it stays up while idle."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse):
        self._session = session
        self.ws = ws
        self._next_id = 0
        self._frames: asyncio.Queue[str | None] = asyncio.Queue()
        self.acks: Counter[int] = Counter()  # how many acks arrived for each packet id
        self._reader = asyncio.create_task(self._read())

    @property
    def connected(self) -> bool:
        return not self._reader.done()

    async def _read(self) -> None:
        """Answer pings at once; queue every other text frame, then ``None`` once closed."""
        async for message in self.ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            text = str(message.data)
            if text == "2":
                await self.ws.send_str("3")
                continue
            if match := _ACK.match(text):
                self.acks[int(match.group(1))] += 1
            self._frames.put_nowait(text)
        self._frames.put_nowait(None)

    @classmethod
    async def open(cls, base_url: str, headers: dict[str, str] | None = None) -> RawSocket:
        session = aiohttp.ClientSession()
        url = base_url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
        try:
            ws = await session.ws_connect(url, headers=headers or {})
        except BaseException:
            await session.close()
            raise
        raw = cls(session, ws)
        opening = await raw.receive()
        assert opening is not None and opening.startswith("0"), opening
        return raw

    async def authenticate(self, token: str) -> str:
        """Send the Socket.IO CONNECT with ``token``; return the server's reply packet."""
        await self.send("40" + json.dumps({"token": token}))
        while True:  # pushes sent from the connect handler may come first
            reply = await self.receive()
            assert reply is not None, "closed while authenticating"
            if reply.startswith(("40", "44")):
                return reply

    async def send(self, text: str) -> None:
        await self.ws.send_str(text)

    async def send_bytes(self, data: bytes) -> None:
        await self.ws.send_bytes(data)

    async def call(self, event: str, *args: Any, within_s: float = WAIT_S) -> Any:
        """Send an event with an ack id and return the ack's first argument."""
        self._next_id += 1
        packet_id = self._next_id
        await self.send(f"42{packet_id}" + json.dumps([event, *args]))
        return await self.ack(packet_id, within_s)

    async def ack(self, packet_id: int, within_s: float = WAIT_S) -> Any:
        prefix = f"43{packet_id}"
        while True:
            text = await self.receive(within_s)
            if text is None:
                raise AssertionError(f"closed before the ack of packet {packet_id}")
            if text.startswith(prefix):
                return json.loads(text[len(prefix) :])[0]

    async def receive(self, within_s: float = WAIT_S) -> str | None:
        """The next text frame other than a ping, or ``None`` once the server has closed."""
        async with asyncio.timeout(within_s):
            frame = await self._frames.get()
        if frame is None:
            self._frames.put_nowait(None)  # stays closed for later calls
        return frame

    async def closed_by_server(self, within_s: float = WAIT_S) -> bool:
        """Whether the server closes this socket within ``within_s`` (frames before are skipped)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while (remaining := deadline - loop.time()) > 0:
            try:
                if await self.receive(remaining) is None:
                    return True
            except TimeoutError:
                return False
        return False

    async def close(self) -> None:
        await self.ws.close()
        await self._reader
        await self._session.close()
