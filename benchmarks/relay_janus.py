"""``teleconsult bench relay --against janus``: the same load through Janus's echotest plugin.

Each simulated participant of the relay benchmark publishes the clip (VP8 + Opus) and receives
one video and one audio stream. Through Janus, each participant is one echotest session that
sends it its own media back: the server receives and sends the same streams and packets as the
project's relay does for a 1:1 consultation, two sessions per consultation. Janus runs with its
own configuration in a temporary directory (``benchmarks/_janus.py``) and is stopped by PID.
Janus does not gather ICE candidates on loopback, so its ICE and these peers use this host's
own first IPv4 address outside loopback (the kernel delivers such packets locally).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aiohttp import ClientSession

from benchmarks._janus import (
    JanusApi,
    WebSocketAdapter,
    connect,
    host_address,
    janus_missing,
    start_janus,
    stop_janus,
    wait_ready,
    write_config,
)
from benchmarks._load import Clip, LoadPeer, StreamCounter
from benchmarks._processes import free_port
from benchmarks.relay import QUIET_WINDOW_S, RunResult, measure_load
from media.aiortc_adapter import ForwardingReceiver

KEEPALIVE_S = 20.0  # Janus drops a session after 60 s without a request
ECHO_BODY = {"audio": True, "video": True}


class EchoPeer(LoadPeer):
    """A load participant whose own media comes back from Janus's echotest."""

    def __init__(self, name: str, clip: Clip, start_index: int, address: str) -> None:
        super().__init__(name, clip, start_index, address)
        self.partner_log = self.log
        self.api: JanusApi | None = None
        self._keepalive: asyncio.Task[None] | None = None

    def count_received(self) -> None:
        """Echoed media arrives on the publishing m-lines themselves."""
        for transceiver in self.pc.getTransceivers():
            receiver = transceiver.receiver
            if isinstance(receiver, ForwardingReceiver) and id(receiver) not in self.streams:
                counter = StreamCounter(transceiver.kind, self.partner_log, receiver)
                self.streams[id(receiver)] = counter
                receiver.set_sink(counter.on_packet)

    async def join_janus(self, session: ClientSession, url: str) -> None:
        """Create a session, attach echotest, offer and accept its answer; keep the session
        alive until closed."""
        self.join_started = time.perf_counter()
        self.publish()
        socket = await connect(session, url)
        self._socket = socket
        self.api = api = JanusApi(WebSocketAdapter(socket))
        api.start()
        await api.create_session()
        await api.attach()
        answer = await api.offer(await self.offer(), ECHO_BODY)
        await self.accept(answer)
        self._keepalive = asyncio.create_task(self._keep_alive(api))

    @staticmethod
    async def _keep_alive(api: JanusApi) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE_S)
            await api.keepalive()

    async def close(self) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()
            await asyncio.gather(self._keepalive, return_exceptions=True)
        if self.api is not None:
            await self.api.close()
        await super().close()


@contextlib.asynccontextmanager
async def janus_server(session: ClientSession, address: str) -> AsyncIterator[tuple[int, str]]:
    """Janus started on a configuration of its own with ICE on ``address``; yields its PID
    and WebSocket URL."""
    with tempfile.TemporaryDirectory(prefix="bench-janus-") as directory:
        workdir = Path(directory)
        port = free_port()
        config = write_config(workdir, port, address)
        process = start_janus(workdir, config)
        try:
            url = f"ws://127.0.0.1:{port}/"
            await wait_ready(session, url, process)
            yield process.pid, url
        finally:
            stop_janus(process)


async def measure_janus(
    clip: Clip, consultations: int, window_s: float, address: str, quiet_s: float = QUIET_WINDOW_S
) -> RunResult:
    """The relay benchmark's load and windows against Janus (two echo sessions per
    consultation)."""
    async with ClientSession() as session, janus_server(session, address) as (pid, url):

        async def join(index: int) -> tuple[LoadPeer, LoadPeer]:
            pair = (
                EchoPeer(f"outlet-{index}", clip, index * 7, address),
                EchoPeer(f"doctor-{index}", clip, index * 11, address),
            )
            for peer in pair:
                await peer.join_janus(session, url)
                peer.media_began = peer.join_started
            return pair

        return await measure_load(clip, pid, consultations, window_s, join, "janus", quiet_s)


class JanusUnavailable(Exception):
    """Janus cannot run on this machine (the message says why)."""


@dataclass
class Round:
    """One project run and one Janus run, with the load average (1 min) before each."""

    project: RunResult
    janus: RunResult
    load_before: tuple[float, float]


def janus_address() -> str:
    """The address Janus's ICE and its load peers use; raises ``JanusUnavailable`` saying why
    Janus cannot run here."""
    reason = janus_missing()
    if reason is not None:
        raise JanusUnavailable(reason)
    address = host_address()
    if address is None:
        raise JanusUnavailable("this host has no IPv4 address outside loopback for Janus's ICE")
    return address


async def compare(
    clip: Clip,
    consultations: int,
    window_s: float,
    rounds: int,
    measure_project: Callable[[], Awaitable[RunResult]],
    address: str,
) -> list[Round]:
    """Alternate project and Janus runs ``rounds`` times, Janus's ICE on ``address``."""
    done = []
    for _ in range(rounds):
        load_project = os.getloadavg()[0]
        project = await measure_project()
        load_janus = os.getloadavg()[0]
        janus = await measure_janus(clip, consultations, window_s, address)
        done.append(Round(project, janus, (load_project, load_janus)))
    return done


_ROWS: list[tuple[str, tuple[str, ...]]] = [
    ("CPU per video stream, % of one core", ("cpu_per_video_stream_pct",)),
    ("CPU per audio stream, %", ("cpu_per_audio_stream_pct",)),
    ("CPU per video / audio packet, µs", ("cpu_per_video_packet_us", "cpu_per_audio_packet_us")),
    ("fixed CPU per consultation, %", ("cpu_fixed_per_consultation_pct",)),
    (
        "server CPU all / audio only / idle, %",
        ("server_cpu_pct", "server_cpu_audio_only_pct", "server_cpu_idle_pct"),
    ),
    ("delivered fps, min / median", ("fps_min", "fps_median")),
    ("join to first frame, median ms", ("join_to_first_frame_ms_median",)),
    ("latency through the server p50 / p95, ms", ("latency_ms_p50", "latency_ms_p95")),
    ("server RSS, MB", ("server_rss_mb",)),
]


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 2) if present else None


def summary(results: list[RunResult]) -> dict[str, float | None]:
    """Each figure's median over the runs."""
    keys = [key for _, keys in _ROWS for key in keys]
    return {key: _median([getattr(r, key) for r in results]) for key in keys}


def video_ratio(project: RunResult, janus: RunResult) -> float | None:
    """Project / Janus CPU per forwarded video stream (``None`` if Janus measured zero)."""
    if janus.cpu_per_video_stream_pct <= 0:
        return None
    return round(project.cpu_per_video_stream_pct / janus.cpu_per_video_stream_pct, 1)


def comparison_json(rounds: list[Round], clip: Clip) -> dict[str, Any]:
    ratios = [video_ratio(r.project, r.janus) for r in rounds]
    return {
        "clip_video_kbps": round(clip.video_kbps, 1),
        "rounds": [
            {
                "load_before": list(r.load_before),
                "project": asdict(r.project),
                "janus": asdict(r.janus),
                "video_cpu_ratio": ratio,
            }
            for r, ratio in zip(rounds, ratios, strict=True)
        ],
        "project": summary([r.project for r in rounds]),
        "janus": summary([r.janus for r in rounds]),
        "video_cpu_ratio_median": _median(list(ratios)),
    }


def comparison_table(rounds: list[Round], clip: Clip) -> str:
    """Medians over the rounds side by side, every round's figures after them."""
    project = summary([r.project for r in rounds])
    janus = summary([r.janus for r in rounds])
    width = max(len(label) for label, _ in _ROWS) + 2
    first = rounds[0].project
    lines = [
        f"clip: 640x480 VP8 {clip.video_kbps:.0f} kbit/s, keyframe every 2 s; Opus 50 packets/s",
        f"{first.consultations} consultations: {first.video_streams} video and "
        f"{first.audio_streams} audio streams forwarded; {first.window_s:.0f} s window; "
        f"medians of {len(rounds)} alternating round(s)",
        "".ljust(width) + "project".rjust(22) + "Janus".rjust(22),
    ]

    def cell(figures: dict[str, float | None], keys: tuple[str, ...]) -> str:
        return " / ".join("-" if figures[k] is None else f"{figures[k]:g}" for k in keys)

    for label, keys in _ROWS:
        lines.append(
            label.ljust(width) + cell(project, keys).rjust(22) + cell(janus, keys).rjust(22)
        )
    ratios = [video_ratio(r.project, r.janus) for r in rounds]
    shown = ", ".join("-" if r is None else f"{r:g}" for r in ratios)
    lines.append(
        f"CPU per video stream, project / Janus: {_median(list(ratios))}x (rounds: {shown})"
    )
    for index, (done, ratio) in enumerate(zip(rounds, ratios, strict=True), 1):
        lines.append(
            f"round {index}: load average {done.load_before[0]:.2f} / {done.load_before[1]:.2f}; "
            f"video stream {done.project.cpu_per_video_stream_pct} % / "
            f"{done.janus.cpu_per_video_stream_pct} % (x{ratio}); "
            f"fps min {done.project.fps_min} / {done.janus.fps_min}"
        )
    return "\n".join(lines)
