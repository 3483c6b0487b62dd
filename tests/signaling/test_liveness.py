"""A connection lost without a goodbye (network loss) is noticed within the presence timeout."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import socketio

from rooms.roles import Role
from rooms.tasks import within
from signaling.auth import Identity
from tests.conftest import RunningServer
from web.keys import gateway_key


class DisconnectRecorder:
    def __init__(self) -> None:
        self.gone: asyncio.Queue[tuple[str, float]] = asyncio.Queue()

    async def on_connect(self, sid: str, identity: Identity) -> None:
        return None

    async def on_disconnect(self, sid: str, identity: Identity) -> None:
        await self.gone.put((identity.subject, time.monotonic()))


async def test_silent_network_loss_is_noticed_within_the_presence_timeout(
    server: RunningServer,
) -> None:
    recorder = DisconnectRecorder()
    server.app[gateway_key].add_listener(recorder)
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(
        server.url,
        auth={"token": server.token(Role.SPECIALIST, "dr-quiet")},
        transports=["websocket"],
    )

    async def black_hole(packet: Any) -> None:
        """The client's network is gone: nothing it sends arrives any more (pongs included)."""

    client.eio._send_packet = black_hole  # type: ignore[method-assign]
    lost_at = time.monotonic()
    subject, noticed_at = await within(recorder.gone.get(), 15)
    assert subject == "dr-quiet"
    assert noticed_at - lost_at <= server.settings.presence_timeout_s + 1.5
    await client.disconnect()
