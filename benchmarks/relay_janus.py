"""``teleconsult bench relay --against janus``: the same load through Janus's echotest plugin.

Each simulated participant of the relay benchmark publishes the clip (VP8 + Opus) and receives
one video and one audio stream. Through Janus, each participant is one echotest session that
sends it its own media back: the server receives and sends the same streams and packets as the
project's relay does for a 1:1 consultation, two sessions per consultation. Janus runs with its
own configuration in a temporary directory (``benchmarks/_janus.py``) and is stopped by PID.
Janus 1.1 gathers no ICE candidate on a loopback interface, so the Janus side runs in a private
network namespace made for each run (``benchmarks/_netns.py``): a child process
(``python -m benchmarks.relay_janus``) started with ``unshare --net`` brings up ``lo`` and
127.0.0.2 on a veth pair there, starts Janus with its ICE on 127.0.0.2 and its WebSocket on
127.0.0.1, joins these peers on 127.0.0.2 and prints its figures as JSON. The namespace has no
route out and disappears with the child. Janus's CPU is still read from /proc/<pid>/stat (the
PID namespace is the host's).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pickle
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aiohttp import ClientSession

from benchmarks import _netns
from benchmarks._janus import (
    JanusApi,
    WebSocketAdapter,
    connect,
    janus_missing,
    start_janus,
    stop_janus,
    wait_ready,
    write_config,
)
from benchmarks._load import Clip, LoadPeer, StreamCounter
from benchmarks._processes import free_port
from benchmarks.relay import QUIET_WINDOW_S, RunResult, measure_load, run_loop, stop_child
from media.aiortc_adapter import ForwardingReceiver
from rooms.tasks import within

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


async def measure_janus_here(
    clip: Clip, consultations: int, window_s: float, address: str, quiet_s: float
) -> tuple[RunResult, int]:
    """The relay benchmark's load and windows against Janus started here (two echo sessions per
    consultation), peers and Janus's ICE on ``address``; returns the figures and Janus's PID."""
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

        result = await measure_load(clip, pid, consultations, window_s, join, "janus", quiet_s)
        return result, pid


@dataclass(frozen=True)
class JanusRun:
    """One run through Janus in its namespace: the figures and the PID Janus had."""

    result: RunResult
    janus_pid: int


def child_command(
    clip_file: Path, consultations: int, window_s: float, quiet_s: float, host_namespace: str
) -> list[str]:
    """The namespaced child that runs Janus and the Janus side's load."""
    return _netns.in_namespace(
        [
            sys.executable,
            "-m",
            "benchmarks.relay_janus",
            "--clip",
            str(clip_file),
            "--consultations",
            str(consultations),
            "--window",
            str(window_s),
            "--quiet",
            str(quiet_s),
            "--host-namespace",
            host_namespace,
        ]
    )


def parse_run(output: bytes) -> JanusRun:
    """The child's figures: a JSON object on its last line of output."""
    payload = json.loads(output.strip().splitlines()[-1])
    return JanusRun(RunResult(**payload["result"]), int(payload["janus_pid"]))


async def measure_janus(
    clip: Clip, consultations: int, window_s: float, quiet_s: float = QUIET_WINDOW_S
) -> JanusRun:
    """The load through Janus, run by a child in a private network namespace; stopped by PID
    (SIGTERM, then SIGKILL) if it outlasts its bound."""
    with tempfile.TemporaryDirectory(prefix="bench-janus-clip-") as directory:
        clip_file = Path(directory) / "clip.pickle"
        clip_file.write_bytes(pickle.dumps(clip))
        command = child_command(clip_file, consultations, window_s, quiet_s, _netns.current())
        process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
        try:
            output, _ = await within(process.communicate(), window_s * 3 + quiet_s * 2 + 180)
        finally:
            await stop_child(process)
    if process.returncode != 0:
        raise RuntimeError(
            f"the Janus run in its network namespace exited with {process.returncode}"
        )
    return parse_run(output)


class JanusUnavailable(Exception):
    """Janus cannot run on this machine (the message says why)."""


@dataclass
class Round:
    """One project run and one Janus run, with the load average (1 min) before each."""

    project: RunResult
    janus: RunResult
    load_before: tuple[float, float]


def require_janus() -> None:
    """Raise ``JanusUnavailable`` saying why Janus or its private namespace cannot run here."""
    reason = janus_missing() or _netns.namespace_missing()
    if reason is not None:
        raise JanusUnavailable(reason)


async def compare(
    clip: Clip,
    consultations: int,
    window_s: float,
    rounds: int,
    measure_project: Callable[[], Awaitable[RunResult]],
) -> list[Round]:
    """Alternate project and Janus runs ``rounds`` times."""
    done = []
    for _ in range(rounds):
        load_project = os.getloadavg()[0]
        project = await measure_project()
        load_janus = os.getloadavg()[0]
        janus = await measure_janus(clip, consultations, window_s)
        done.append(Round(project, janus.result, (load_project, load_janus)))
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


async def _measure_until_stopped(
    clip: Clip, consultations: int, window_s: float, quiet_s: float
) -> tuple[RunResult, int]:
    """``measure_janus_here`` on 127.0.0.2; SIGTERM cancels it, so Janus is still stopped."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await measure_janus_here(clip, consultations, window_s, _netns.ADDRESS, quiet_s)


def main(argv: list[str] | None = None) -> int:
    """The child's entry point, run inside its private network namespace (``child_command``)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.relay_janus")
    parser.add_argument("--clip", type=Path, required=True)
    parser.add_argument("--consultations", type=int, required=True)
    parser.add_argument("--window", type=float, required=True)
    parser.add_argument("--quiet", type=float, required=True)
    parser.add_argument("--host-namespace", required=True)
    args = parser.parse_args(argv)
    _netns.set_up(args.host_namespace)
    clip = pickle.loads(args.clip.read_bytes())  # written by the parent in its own temp folder
    result, pid = run_loop(
        _measure_until_stopped(clip, args.consultations, args.window, args.quiet)
    )
    print(json.dumps({"janus_pid": pid, "result": asdict(result)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
