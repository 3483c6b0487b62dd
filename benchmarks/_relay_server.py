"""The relay under test, as its own process: a ``MediaRegistry`` behind a tiny WebSocket signaller.

Run by ``benchmarks/relay.py`` (``python -m benchmarks._relay_server --port P [--transcode]
[--profile FILE]``); it prints ``READY`` once listening on 127.0.0.1 and stops on SIGTERM or after
``--max-seconds``. ``--profile`` runs the relay under cProfile and writes its pstats to ``FILE``
on exit.
Signalling (JSON over one WebSocket per participant): the client sends
``{"consultation", "participant"}`` then ``{"type": "offer"|"answer", "sdp"}``; the server sends
``{"type": "answer"|"offer", "sdp"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import logging
import signal
import sys
from typing import Any

from aiohttp import WSMsgType, web

from media.config import MediaConfig
from media.downlink import LinkState
from media.metrics import MediaMetrics
from media.router import MediaRegistry
from media.stats import ParticipantStats
from rooms.tasks import within

logger = logging.getLogger(__name__)


class WebSocketSignals:
    """Router messages to each participant's WebSocket."""

    def __init__(self) -> None:
        self.sockets: dict[tuple[str, str], web.WebSocketResponse] = {}

    async def send_offer(self, consultation_id: str, participant_id: str, sdp: str) -> None:
        socket = self.sockets.get((consultation_id, participant_id))
        if socket is not None and not socket.closed:
            await socket.send_json({"type": "offer", "sdp": sdp})

    async def send_tracks(
        self, consultation_id: str, participant_id: str, tracks: list[dict[str, Any]]
    ) -> None:
        """Load clients need no labels."""

    async def send_stats(self, consultation_id: str, stats: list[ParticipantStats]) -> None:
        """Not measured here."""

    async def send_link_state(
        self, consultation_id: str, participant_id: str, state: LinkState
    ) -> None:
        """Load clients show nothing."""


async def _participant(request: web.Request) -> web.WebSocketResponse:
    registry: MediaRegistry = request.app["registry"]
    signals: WebSocketSignals = request.app["signals"]
    socket = web.WebSocketResponse(max_msg_size=1 << 20)
    await socket.prepare(request)
    hello = await socket.receive_json()
    key = (str(hello["consultation"]), str(hello["participant"]))
    signals.sockets[key] = socket
    router = registry.router(key[0])
    try:
        async for message in socket:
            if message.type != WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            if data["type"] == "offer":
                answer = await router.handle_offer(key[1], data["sdp"])
                await socket.send_json({"type": "answer", "sdp": answer})
            elif data["type"] == "answer":
                await router.handle_answer(key[1], data["sdp"])
    finally:
        signals.sockets.pop(key, None)
        await registry.remove_participant(*key)
    return socket


async def serve(port: int, transcode: bool, max_seconds: float) -> None:
    signals = WebSocketSignals()
    registry = MediaRegistry(
        MediaConfig(media_ips=("127.0.0.1",), force_transcode=transcode, stats_interval_s=3600.0),
        MediaMetrics(),
        signals,
    )
    app = web.Application()
    app["registry"] = registry
    app["signals"] = signals
    app.router.add_get("/ws", _participant)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("READY", flush=True)
    with contextlib.suppress(asyncio.TimeoutError):
        await within(stop.wait(), max_seconds)
    await registry.close()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--transcode", action="store_true")
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument("--profile", help="write cProfile pstats of the whole run to this file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    profile = cProfile.Profile() if args.profile else None
    if profile is not None:
        profile.enable()
    try:
        import uvloop
    except ImportError:  # the stdlib loop still works, about 3x slower per packet
        asyncio.run(serve(args.port, args.transcode, args.max_seconds))
    else:
        uvloop.run(serve(args.port, args.transcode, args.max_seconds))
    if profile is not None:
        profile.disable()
        profile.dump_stats(args.profile)


if __name__ == "__main__":
    main()
