"""Hundreds of joins and leaves leave no peer, task, thread or socket behind."""

from __future__ import annotations

import asyncio
import gc
import os
import threading

from tests.media.clients import ClientPeer
from tests.media.conftest import Room

QUICK_CYCLES = 200
MEDIA_CYCLES = 10


def own_threads() -> list[str]:
    """Threads other than the loop's default executor pool (which grows to a fixed cap)."""
    return sorted(t.name for t in threading.enumerate() if not t.name.startswith("asyncio_"))


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.05)
    gc.collect()


async def test_many_joins_and_leaves_release_everything(room: Room) -> None:
    doctor = await room.join(ClientPeer("dr-li", rgb=(40, 200, 60)))
    warm = await room.join(ClientPeer("outlet-1"))
    await doctor.wait_for("outlet-1", "video")
    await room.leave(warm)
    await settle()
    fds, threads = open_fds(), own_threads()
    tasks = len(asyncio.all_tasks())

    for index in range(QUICK_CYCLES):  # offer/answer only: peers closed before media flows
        client = await room.join(ClientPeer("outlet-1", audio=index % 2 == 0))
        await room.leave(client)
    for _ in range(MEDIA_CYCLES):  # with media flowing both ways
        client = await room.join(ClientPeer("outlet-1"))
        await doctor.wait_for("outlet-1", "video", frames=2)
        await client.wait_for("dr-li", "video", frames=2)
        await room.leave(client)
        for received in doctor.received.values():
            received.frames.clear()
    await settle()

    assert room.router.participant_ids == ["dr-li"]
    assert room.registry.get_sample_value("teleconsult_media_peers") == 1
    assert open_fds() <= fds + 2, "sockets or files leaked"
    assert own_threads() == threads
    assert len(asyncio.all_tasks()) <= tasks + 4, "tasks leaked"
    assert len(room.router.peer("dr-li").pc.getTransceivers()) <= 6  # slots reused on rejoin
