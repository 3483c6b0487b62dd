"""Run inside the tree under test (``python - < replay.py`` from its root, its own ``.venv``).

One 1:1 consultation through the tree's relay, in this process on 127.0.0.1 (the relay
benchmark's signaller, load clients and clip). Once media flows, the relay's receivers of one
publisher are fed a replay of that publisher's latest packet, numbered on: ``receive_unparsed``
is called straight, in a tight loop with no event-loop turn, so nothing else runs in between.
Each packet goes the relay's whole per-packet path to the other participant (serialised,
protected, ``sendto``); then as many again with the sender module's ``send_rtp_now`` (SRTP
protect and ``sendto``, the same C calls in every revision) replaced by a stub that counts
them, so that only the relay's own Python is timed. Prints one JSON line: per kind, each
batch's CPU time per packet (µs, this thread's CPU clock) with and without the send, and how
many packets reached the stub (each must, or a shorter path was timed).
"""

from __future__ import annotations

import asyncio
import importlib
import itertools
import json
import os
import sys
import time
import traceback
from collections.abc import Iterator
from typing import Any

from aiohttp import ClientSession, web

from benchmarks._load import LoadPeer, make_clip
from benchmarks._processes import free_port
from benchmarks._relay_server import WebSocketSignals, _participant
from media.config import MediaConfig
from media.metrics import MediaMetrics

BATCHES = 60
BATCH_PACKETS = 200
_PER_PHASE = BATCHES * BATCH_PACKETS
FLOW_TIMEOUT_S = 20.0
_VIDEO_PACKETS_PER_FRAME = 8
_TIMESTAMP_STEP = {"video": 3000, "audio": 960}


def _layout() -> tuple[Any, Any, Any]:
    """The tree's registry, receiver and sender classes (also the layout before the adapter
    package, commit 4dc3f96 and earlier)."""
    router = importlib.import_module("media.router")
    try:
        adapter = importlib.import_module("media.aiortc_adapter")
    except ImportError:
        adapter = importlib.import_module("media.forwarding")
    return router.MediaRegistry, adapter.ForwardingReceiver, adapter.ForwardingSender


def renumbered(data: bytes, index: int, kind: str) -> bytes:
    """``data`` (a plain RTP packet) as the packet ``index`` places after it."""
    sequence = (int.from_bytes(data[2:4], "big") + index) & 0xFFFF
    frames = index // _VIDEO_PACKETS_PER_FRAME if kind == "video" else index
    timestamp = (int.from_bytes(data[4:8], "big") + frames * _TIMESTAMP_STEP[kind]) & 0xFFFFFFFF
    return data[:2] + sequence.to_bytes(2, "big") + timestamp.to_bytes(4, "big") + data[8:]


async def _run() -> None:
    """Print the figures and end the process at once: the replay moved the streams' numbers
    on, so what the clients still send would only be refused until they time out."""
    try:
        print(json.dumps(await _replay()), flush=True)
    except Exception:
        traceback.print_exc()
        os._exit(1)
    os._exit(0)


async def _replay() -> dict[str, Any]:
    registry_class, receiver_class, sender_class = _layout()
    latest: dict[int, tuple[Any, bytes]] = {}
    untimed = receiver_class.receive_unparsed

    def recording(self: Any, data: bytes, arrival_time_ms: int) -> bool:
        taken = bool(untimed(self, data, arrival_time_ms))
        if taken:
            latest[id(self)] = (self, data)
        return taken

    receiver_class.receive_unparsed = recording
    signals = WebSocketSignals()
    registry = registry_class(
        MediaConfig(media_ips=("127.0.0.1",), stats_interval_s=3600.0), MediaMetrics(), signals
    )
    app = web.Application()
    app["registry"], app["signals"] = registry, signals
    app.router.add_get("/ws", _participant)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    clip = make_clip()
    peers = [LoadPeer("outlet", clip, 0), LoadPeer("doctor", clip, 7)]
    session = ClientSession()
    for peer in peers:
        await peer.join_relay(session, f"http://127.0.0.1:{port}/ws", "c1")
    deadline = time.monotonic() + FLOW_TIMEOUT_S
    while {s.kind for s in peers[1].streams.values() if s.packets > 50} != {"video", "audio"}:
        if time.monotonic() > deadline:
            raise RuntimeError("media did not flow through the relay")
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)
    receiver_class.receive_unparsed = untimed
    clients = {id(receiver) for peer in peers for receiver in peer.pc.getReceivers()}
    relay_receivers = [entry for key, entry in latest.items() if key not in clients]
    return _measure(relay_receivers, sender_class)


def _measure(receivers: list[tuple[Any, bytes]], sender_class: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    arrival_ms = int(time.time() * 1000)
    sender_module = sys.modules[sender_class.__module__]
    send = sender_module.send_rtp_now
    sent = 0

    def not_sent(dtls: Any, data: bytes) -> bool:
        nonlocal sent
        sent += 1
        return True

    for receiver, data in receivers:
        kind = receiver.track.kind
        if kind in result:
            continue  # one publisher's streams are enough: the other's are the same path
        packets = iter([renumbered(data, i, kind) for i in range(1, 2 * _PER_PHASE + 1)])
        with_send = _batches(receiver, packets, arrival_ms)
        sender_module.send_rtp_now, sent = not_sent, 0
        try:
            without_send = _batches(receiver, packets, arrival_ms)
        finally:
            sender_module.send_rtp_now = send
        result[kind] = {
            "batch_us": with_send,
            "batch_us_without_send": without_send,
            "checked_sent": sent,
        }
    return result


def _batches(receiver: Any, packets: Iterator[bytes], arrival_ms: int) -> list[float]:
    """CPU time per packet (µs) of each batch of the next ``BATCHES * BATCH_PACKETS`` packets."""
    result = []
    for _ in range(BATCHES):
        batch = list(itertools.islice(packets, BATCH_PACKETS))
        started = time.thread_time_ns()
        for packet in batch:
            receiver.receive_unparsed(packet, arrival_ms)
        result.append(round((time.thread_time_ns() - started) / BATCH_PACKETS / 1000, 2))
    return result


asyncio.run(_run())
