"""The soak benchmark's simulated clients: a cancelled waiter ends, a kiosk's connections close.

Regression for the soak timeouts: a push wakes every waiter of one connection, and on Python
3.11 ``asyncio.wait_for`` swallowed a cancellation arriving in the same loop turn, so a media
call's answering task outlived its visit and the visit hung until its 180 s limit.
"""

from __future__ import annotations

import asyncio

from benchmarks.soak import Client, Tally
from rooms.roles import Role
from tests.conftest import RunningServer


async def _cancel_as_a_push_wakes(client: Client) -> asyncio.Task[object]:
    """Start a long wait, deliver another event's push, cancel the wait as the push wakes it."""
    waiter = asyncio.create_task(client.wait("rtc.offer", within_s=3600))
    await asyncio.sleep(0)  # the waiter is waiting on the connection's event
    await client._push("consultation.ended", {"consultation_id": "c-1"})
    await asyncio.sleep(0)  # the wake-up is under way, not yet seen by the waiter
    waiter.cancel()
    await asyncio.wait([waiter], timeout=5)
    return waiter


async def test_a_wait_cancelled_as_a_push_arrives_ends() -> None:
    client = Client("http://127.0.0.1:9", "unused", Tally())
    waiter = await _cancel_as_a_push_wakes(client)
    try:
        assert waiter.cancelled()
    finally:
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)


async def test_a_connected_kiosk_wait_cancelled_as_a_push_arrives_ends(
    server: RunningServer,
) -> None:
    client = Client(server.url, server.token(Role.OUTLET, "outlet-1"), Tally())
    ready = await client.connect()
    assert ready is not None
    try:
        waiter = await _cancel_as_a_push_wakes(client)
        cancelled = waiter.cancelled()
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        assert cancelled
        assert client.sio.connected
    finally:
        await client.close()
