"""Test helper: a python-socketio client that records pushes and unwraps acks."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import socketio

from rooms.roles import Role
from tests.conftest import RunningServer

WAIT_S = 6.0


class Peer:
    """One connected client (outlet, clinician, guest or admin)."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token
        self.client = socketio.AsyncClient(reconnection=False)
        self.pushes: defaultdict[str, list[Any]] = defaultdict(list)
        self._seen: defaultdict[str, int] = defaultdict(int)
        self._arrived = asyncio.Event()
        self.client.on("*", self._record)

    async def _record(self, event: str, data: Any = None) -> None:
        self.pushes[event].append(data)
        self._arrived.set()

    async def connect(self) -> dict[str, Any]:
        """Connect and return the ``session.ready`` payload."""
        await self.client.connect(
            self.url, auth={"token": self.token}, transports=["websocket"], wait_timeout=5
        )
        return dict(await self.next("session.ready"))

    async def disconnect(self) -> None:
        if self.client.connected:
            await self.client.disconnect()

    async def call(self, event: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        return dict(await self.client.call(event, payload or {}, timeout=WAIT_S))

    async def ok(self, event: str, payload: dict[str, Any] | None = None) -> Any:
        ack = await self.call(event, payload)
        assert "ok" in ack, f"{event} refused: {ack}"
        return ack["ok"]

    async def refused(self, event: str, payload: dict[str, Any] | None = None) -> str:
        ack = await self.call(event, payload)
        assert "error" in ack, f"{event} was not refused: {ack}"
        return str(ack["error"]["code"])

    async def next(
        self, event: str, where: Callable[[Any], bool] = lambda _: True, within_s: float = WAIT_S
    ) -> Any:
        """The next push of ``event`` (not returned before) that satisfies ``where``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while True:
            items = self.pushes[event]
            while self._seen[event] < len(items):
                item = items[self._seen[event]]
                self._seen[event] += 1
                if where(item):
                    return item
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"no {event} push within {within_s}s; got {dict(self.pushes)}")
            self._arrived.clear()
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation
            # that arrives as the push does, and a cancelled background reader then waits on.
            try:
                async with asyncio.timeout(remaining):
                    await self._arrived.wait()
            except TimeoutError:
                continue

    def none_of(self, event: str, where: Callable[[Any], bool] = lambda _: True) -> bool:
        """True if no unseen push of ``event`` matches (does not consume)."""
        return not any(where(item) for item in self.pushes[event][self._seen[event] :])


class Cast:
    """Creates and connects peers against one server and disconnects them all at the end."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.peers: list[Peer] = []

    async def join(self, role: Role, subject: str, **claims: Any) -> Peer:
        return await self.with_token(self.server.token(role, subject, **claims))

    async def with_token(self, token: str) -> Peer:
        peer = Peer(self.server.url, token)
        self.peers.append(peer)
        await peer.connect()
        return peer

    async def outlet(self, subject: str) -> Peer:
        return await self.join(Role.OUTLET, subject)

    async def specialist(self, subject: str, *services: str) -> Peer:
        return await self.join(Role.SPECIALIST, subject, services=services or ("ophthalmology",))

    async def close(self) -> None:
        for peer in self.peers:
            await peer.disconnect()


def check_in_payload(outlet: str, service: str = "ophthalmology", **extra: Any) -> dict[str, Any]:
    return {
        "service": service,
        "outlet_id": outlet,
        "patient_ref": "P-" + outlet,
        "guardian_present": True,
        **extra,
    }
