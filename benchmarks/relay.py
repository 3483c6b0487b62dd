"""``teleconsult bench relay``: CPU, frame rate, join time and added latency of the media relay.

Simulated 1:1 consultations on 127.0.0.1: each side publishes a pre-encoded 640x480 VP8 clip
(~500 kbit/s, keyframe every 2 s) and Opus at real time, and receives without decoding. The relay
runs as its own process (its CPU is read from /proc/<pid>/stat); the load runs here. A direct
peer-to-peer pair runs alongside as the latency baseline. Three windows split the relay's CPU:
everything flowing, audio only (video paused at the publishers), then nothing sent (the fixed
cost of the consultations: RTCP, ICE consent checks, the control loop, timers). Video costs the
full window less the audio-only one, audio the audio-only window less the idle one; per stream,
and per packet the subscribers received (µs), so clips of other bitrates compare. The fixed cost
is reported per consultation, and the total CPU beside them.
``--compare transcode`` repeats the same load against the relay in transcoding mode (decode +
re-encode per subscriber). ``--nodes N`` (or ``1,2``) runs the full server as N cluster nodes
instead (see ``benchmarks/relay_nodes.py``). ``--against janus`` runs the same load through
Janus's echotest plugin, alternating with this relay, and prints both side by side
(``benchmarks/relay_janus.py``; Janus and that side's load run in a private network namespace,
between 127.0.0.1 and 127.0.0.2). ``--capacity`` searches for the most consultations held at
full frame rate (``benchmarks/relay_capacity.py``).
Everything is bounded: at most 32 consultations, at most 120 s per measuring window, at most 5
rounds, at most 8 runs of a capacity search.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from aiohttp import ClientSession

from benchmarks._load import Clip, LoadPeer, direct_pair, make_clip, video_capability_check
from benchmarks._processes import free_port
from rooms.tasks import within

MAX_CONSULTATIONS = 32
MAX_WINDOW_S = 120.0
MAX_ROUNDS = 5
QUIET_WINDOW_S = 10.0
WARMUP_S = 3.0


@dataclass
class RunResult:
    """Figures of one relay mode under the same load."""

    mode: str
    consultations: int
    video_streams: int
    audio_streams: int
    window_s: float
    server_cpu_pct: float
    server_cpu_audio_only_pct: float
    server_cpu_idle_pct: float
    cpu_per_video_stream_pct: float
    cpu_per_audio_stream_pct: float
    cpu_fixed_per_consultation_pct: float
    cpu_per_stream_pair_pct: float
    cpu_per_stream_pair_at_30fps_pct: float
    cpu_per_video_packet_us: float | None
    cpu_per_audio_packet_us: float | None
    fps_min: float
    fps_median: float
    video_kbps_median: float
    join_to_first_frame_ms_median: float | None
    join_to_first_frame_ms_max: float | None
    latency_ms_p50: float | None
    latency_ms_p95: float | None
    p2p_latency_ms_p50: float | None
    p2p_latency_ms_p95: float | None
    added_latency_ms_p50: float | None
    added_latency_ms_p95: float | None
    server_rss_mb: float
    load_cpu_pct: float


def _process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process, from the kernel's accounting."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))], 2)


def _per_packet_us(cpu_pct_s: float, packets: int) -> float | None:
    """CPU µs per forwarded packet from CPU in %·s of one core over the packets delivered."""
    return round(cpu_pct_s / 100 * 1e6 / packets, 1) if packets else None


def _minus(a: float | None, b: float | None) -> float | None:
    return round(a - b, 2) if a is not None and b is not None else None


async def _start_relay(
    port: int, transcode: bool, bound_s: float, profile: str | None = None
) -> asyncio.subprocess.Process:
    command = [
        sys.executable,
        "-m",
        "benchmarks._relay_server",
        "--port",
        str(port),
        "--max-seconds",
        str(bound_s),
    ]
    command += ["--transcode"] if transcode else []
    command += ["--profile", profile] if profile else []
    process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    line = await within(process.stdout.readline(), 30)
    if line.strip() != b"READY":
        process.kill()
        raise SystemExit("the relay process did not start")
    return process


async def stop_child(process: asyncio.subprocess.Process) -> None:
    """Stop a child by its PID: SIGTERM, then SIGKILL after 20 s."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await within(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()


Join = Callable[[int], Awaitable[tuple[LoadPeer, LoadPeer]]]


async def measure(
    clip: Clip,
    consultations: int,
    window_s: float,
    transcode: bool,
    profile: str | None = None,
) -> RunResult:
    """Run the load against one relay process and return its figures.

    ``profile``: run the relay under cProfile and write its pstats there (its CPU figures then
    include the profiler's overhead).
    """
    port = free_port()
    process = await _start_relay(port, transcode, window_s * 3 + 180, profile)
    url = f"http://127.0.0.1:{port}/ws"
    try:
        async with ClientSession() as session:

            async def join(index: int) -> tuple[LoadPeer, LoadPeer]:
                outlet = LoadPeer(f"outlet-{index}", clip, start_index=index * 7)
                doctor = LoadPeer(f"doctor-{index}", clip, start_index=index * 11)
                outlet.partner_log, doctor.partner_log = doctor.log, outlet.log
                await outlet.join_relay(session, url, f"c-{index}")
                await doctor.join_relay(session, url, f"c-{index}")
                # Either side's media can flow only once both have joined.
                outlet.media_began = doctor.media_began = doctor.join_started
                return outlet, doctor

            mode = "transcode" if transcode else "forward"
            return await measure_load(clip, process.pid, consultations, window_s, join, mode)
    finally:
        await stop_child(process)


async def measure_load(
    clip: Clip,
    pid: int,
    consultations: int,
    window_s: float,
    join: Join,
    mode: str,
    quiet_s: float = QUIET_WINDOW_S,
) -> RunResult:
    """Join ``consultations`` pairs of load peers with ``join`` and measure the server process
    ``pid`` under them: everything flowing (``window_s``), audio only, then nothing sent
    (``quiet_s`` each)."""
    peers: list[tuple[LoadPeer, LoadPeer]] = []
    publisher, subscriber = await direct_pair(clip)
    try:
        for index in range(consultations):
            peers.append(await join(index))
        await asyncio.sleep(WARMUP_S)

        everyone = [p for pair in peers for p in pair]
        for peer in [*everyone, subscriber]:
            for counter in peer.streams.values():
                counter.reset_window()
        load_cpu_start = time.process_time()
        cpu_start, started = _process_cpu_s(pid), time.perf_counter()
        await asyncio.sleep(window_s)
        cpu_end, ended = _process_cpu_s(pid), time.perf_counter()
        load_cpu = time.process_time() - load_cpu_start
        elapsed = ended - started
        rss = _rss_mb(pid)

        video = [c for p in everyone for c in p.streams.values() if c.kind == "video"]
        video_packets = sum(c.packets for c in video)
        fps = [c.frames / elapsed for c in video]
        kbps = [c.octets * 8 / elapsed / 1000 for c in video]
        latencies = [ms for c in video for ms in c.latencies_ms]
        p2p = [
            ms for c in subscriber.streams.values() if c.kind == "video" for ms in c.latencies_ms
        ]
        joins = []
        for peer in everyone:
            first = [
                c.first_frame_at
                for c in peer.streams.values()
                if c.kind == "video" and c.first_frame_at is not None
            ]
            if first:
                joins.append((min(first) - peer.media_began) * 1000)

        for peer in everyone:  # audio only: what the audio streams cost on their own
            peer.video.paused.clear()
        await asyncio.sleep(1.0)
        audio = [c for p in everyone for c in p.streams.values() if c.kind == "audio"]
        for counter in audio:
            counter.reset_window()
        audio_cpu = await _cpu_pct(pid, quiet_s)
        audio_packets = sum(c.packets for c in audio)
        for peer in everyone:  # nothing sent: what the consultations cost idle
            peer.audio.paused.clear()
        await asyncio.sleep(1.0)
        idle_cpu = await _cpu_pct(pid, quiet_s)
        audio_only_cpu = max(0.0, audio_cpu - idle_cpu)

        streams = 2 * consultations
        full_cpu = (cpu_end - cpu_start) / elapsed * 100
        latency_p50, latency_p95 = _percentile(latencies, 0.5), _percentile(latencies, 0.95)
        p2p_p50, p2p_p95 = _percentile(p2p, 0.5), _percentile(p2p, 0.95)
        forwards = mode != "transcode"
        return RunResult(
            mode=mode,
            consultations=consultations,
            video_streams=streams,
            audio_streams=streams,
            window_s=round(elapsed, 1),
            server_cpu_pct=round(full_cpu, 1),
            server_cpu_audio_only_pct=round(audio_cpu, 1),
            server_cpu_idle_pct=round(idle_cpu, 1),
            cpu_per_video_stream_pct=round(max(0.0, full_cpu - audio_cpu) / streams, 2),
            cpu_per_audio_stream_pct=round(audio_only_cpu / streams, 2),
            cpu_fixed_per_consultation_pct=round(idle_cpu / consultations, 2),
            cpu_per_stream_pair_pct=round(full_cpu / streams, 2),
            cpu_per_video_packet_us=_per_packet_us(
                max(0.0, full_cpu - audio_cpu) * elapsed, video_packets
            ),
            cpu_per_audio_packet_us=_per_packet_us(audio_only_cpu * quiet_s, audio_packets),
            cpu_per_stream_pair_at_30fps_pct=round(
                full_cpu / streams * 30 / max(statistics.median(fps) if fps else 0.0, 0.1), 2
            ),
            fps_min=round(min(fps), 1) if fps else 0.0,
            fps_median=round(statistics.median(fps), 1) if fps else 0.0,
            video_kbps_median=round(statistics.median(kbps), 1) if kbps else 0.0,
            join_to_first_frame_ms_median=round(statistics.median(joins), 1) if joins else None,
            join_to_first_frame_ms_max=round(max(joins), 1) if joins else None,
            latency_ms_p50=latency_p50 if forwards else None,
            latency_ms_p95=latency_p95 if forwards else None,
            p2p_latency_ms_p50=p2p_p50,
            p2p_latency_ms_p95=p2p_p95,
            added_latency_ms_p50=_minus(latency_p50, p2p_p50) if forwards else None,
            added_latency_ms_p95=_minus(latency_p95, p2p_p95) if forwards else None,
            server_rss_mb=round(rss, 1),
            load_cpu_pct=round(load_cpu / elapsed * 100, 1),
        )
    finally:
        for pair in peers:
            for peer in pair:
                await peer.close()
        await publisher.close()
        await subscriber.close()


async def _cpu_pct(pid: int, window_s: float) -> float:
    """The process's CPU over the next ``window_s``, % of one core."""
    start = _process_cpu_s(pid)
    await asyncio.sleep(window_s)
    return (_process_cpu_s(pid) - start) / window_s * 100


def _table(results: list[RunResult], clip: Clip) -> str:
    rows = [
        ("consultations", "consultations"),
        ("forwarded video / audio streams", "video_streams"),
        ("server CPU, % of one core", "server_cpu_pct"),
        ("server CPU, audio only", "server_cpu_audio_only_pct"),
        ("server CPU, idle (nothing sent)", "server_cpu_idle_pct"),
        ("CPU per video stream, %", "cpu_per_video_stream_pct"),
        ("CPU per audio stream, %", "cpu_per_audio_stream_pct"),
        ("fixed CPU per consultation, %", "cpu_fixed_per_consultation_pct"),
        ("CPU per video+audio stream pair, %", "cpu_per_stream_pair_pct"),
        ("  same, scaled to 30 fps delivered", "cpu_per_stream_pair_at_30fps_pct"),
        (
            "CPU per video / audio packet, µs",
            ("cpu_per_video_packet_us", "cpu_per_audio_packet_us"),
        ),
        ("delivered fps, min", "fps_min"),
        ("delivered fps, median", "fps_median"),
        ("video kbit/s per stream, median", "video_kbps_median"),
        ("join to first frame, median ms", "join_to_first_frame_ms_median"),
        ("join to first frame, max ms", "join_to_first_frame_ms_max"),
        ("latency via relay p50 / p95 ms", ("latency_ms_p50", "latency_ms_p95")),
        ("latency peer-to-peer p50 / p95 ms", ("p2p_latency_ms_p50", "p2p_latency_ms_p95")),
        ("added latency p50 / p95 ms", ("added_latency_ms_p50", "added_latency_ms_p95")),
        ("server RSS, MB", "server_rss_mb"),
        ("load process CPU, %", "load_cpu_pct"),
    ]
    width = max(len(label) for label, _ in rows) + 2
    lines = [
        f"clip: 640x480 VP8 {clip.video_kbps:.0f} kbit/s, keyframe every 2 s; Opus 50 packets/s",
        "".ljust(width) + "".join(r.mode.rjust(14) for r in results),
    ]
    for label, key in rows:
        cells = []
        for result in results:
            data = asdict(result)
            value = (
                " / ".join(str(data[k]) for k in key) if isinstance(key, tuple) else str(data[key])
            )
            cells.append(value.replace("None", "-").rjust(14))
        lines.append(label.ljust(width) + "".join(cells))
    if len(results) == 2:
        raw, scaled = _ratios(results)
        lines.append(
            f"transcoding / forwarding CPU per stream: {raw:.1f}x as measured, "
            f"{scaled:.1f}x per delivered frame (the transcoder saturates when fps < 29)"
        )
    return "\n".join(lines)


def _ratios(results: list[RunResult]) -> tuple[float, float]:
    forward, transcode = results
    raw = transcode.cpu_per_stream_pair_pct / max(forward.cpu_per_stream_pair_pct, 0.01)
    scaled = transcode.cpu_per_stream_pair_at_30fps_pct / max(
        forward.cpu_per_stream_pair_at_30fps_pct, 0.01
    )
    return round(raw, 2), round(scaled, 2)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="teleconsult bench relay",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--consultations", type=int, default=8, help="1:1 consultations (max 32)")
    parser.add_argument(
        "--duration", type=float, default=15.0, help="measuring window, s (max 120)"
    )
    parser.add_argument("--compare", choices=["transcode"], help="also run a transcoding relay")
    parser.add_argument(
        "--nodes",
        help="run the full server as N nodes on one Redis (a list like 1,2 runs each, max 8)",
    )
    parser.add_argument(
        "--against",
        choices=["janus"],
        help="run the same load through Janus's echotest (started here), alternating with the "
        "project's relay, and print both side by side",
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="alternating rounds with --against (max 5)"
    )
    parser.add_argument(
        "--capacity",
        action="store_true",
        help="find the most consultations held at full frame rate (--consultations is the start)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        choices=[1, 2],
        help="with --capacity: the full server as this many nodes on one Redis (what serve "
        "--workers starts) instead of the bare relay process",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="profile the (forwarding) relay process with cProfile and write pstats to FILE "
        "(read with python -m pstats FILE); inflates its CPU figures",
    )
    args = parser.parse_args(argv)
    if args.nodes is not None:
        try:
            args.nodes = [int(n) for n in args.nodes.split(",")]
        except ValueError:
            parser.error("--nodes takes a number or a list like 1,2")
        if not all(1 <= n <= 8 for n in args.nodes):
            parser.error("--nodes must be 1..8")
    if not 1 <= args.rounds <= MAX_ROUNDS:
        parser.error(f"--rounds must be 1..{MAX_ROUNDS}")
    if args.workers is not None and not args.capacity:
        parser.error("--workers goes with --capacity")
    if sum(bool(x) for x in (args.against, args.capacity, args.nodes, args.compare)) > 1:
        parser.error("--against, --capacity, --nodes and --compare are separate runs")
    if not 1 <= args.consultations <= MAX_CONSULTATIONS:
        parser.error(f"--consultations must be 1..{MAX_CONSULTATIONS}")
    if not 1 <= args.duration <= MAX_WINDOW_S:
        parser.error(f"--duration must be 1..{MAX_WINDOW_S:.0f}")
    return args


async def _run(args: argparse.Namespace) -> int:
    if args.against == "janus":
        return await _run_against_janus(args)
    video_capability_check()
    clip = make_clip()
    if args.nodes:
        return await _run_nodes(args, clip)
    if args.capacity:
        return await _run_capacity(args, clip)
    results = [await measure(clip, args.consultations, args.duration, False, profile=args.profile)]
    if args.compare == "transcode":
        results.append(await measure(clip, args.consultations, args.duration, transcode=True))
    if args.json:
        payload: dict[str, Any] = {
            "clip_video_kbps": round(clip.video_kbps, 1),
            "results": [asdict(r) for r in results],
        }
        if len(results) == 2:
            raw, scaled = _ratios(results)
            payload["transcode_cpu_ratio"] = raw
            payload["transcode_cpu_ratio_per_delivered_frame"] = scaled
        print(json.dumps(payload, indent=2))
    else:
        print(_table(results, clip))
    return 0


async def _run_nodes(args: argparse.Namespace, clip: Clip) -> int:
    from benchmarks.relay_nodes import cluster_json, cluster_table, measure_cluster

    results = [
        await measure_cluster(clip, nodes, args.consultations, args.duration)
        for nodes in args.nodes
    ]
    print(
        json.dumps(cluster_json(results, clip), indent=2) if args.json else cluster_table(results)
    )
    return 0


async def _run_against_janus(args: argparse.Namespace) -> int:
    from benchmarks.relay_janus import (
        JanusUnavailable,
        compare,
        comparison_json,
        comparison_table,
        require_janus,
    )

    try:
        require_janus()
    except JanusUnavailable as reason:
        print(f"skipped: {reason}")
        return 0
    video_capability_check()
    clip = make_clip()
    rounds = await compare(
        clip,
        args.consultations,
        args.duration,
        args.rounds,
        lambda: measure(clip, args.consultations, args.duration, False),
    )
    print(
        json.dumps(comparison_json(rounds, clip), indent=2)
        if args.json
        else comparison_table(rounds, clip)
    )
    return 0


async def _run_capacity(args: argparse.Namespace, clip: Clip) -> int:
    import socketio

    from benchmarks.relay_capacity import Probe, capacity_lines, largest_full
    from benchmarks.relay_nodes import measure_cluster

    async def relay_fps(consultations: int) -> Probe:
        result = await measure(clip, consultations, args.duration, False)
        return Probe(consultations, result.fps_min, result.server_cpu_pct, result.load_cpu_pct)

    async def nodes_fps(consultations: int) -> Probe:
        try:
            result = await measure_cluster(clip, args.workers, consultations, args.duration)
        except (SystemExit, TimeoutError, socketio.exceptions.SocketIOError) as error:
            # A participant's request timed out or was refused: the nodes did not hold them.
            return Probe(consultations, 0.0, 0.0, 0.0, failure=str(error) or type(error).__name__)
        server_cpu = round(sum(node.cpu_pct for node in result.per_node), 1)
        return Probe(consultations, result.fps_min, server_cpu, result.load_cpu_pct)

    label = (
        "relay process"
        if args.workers is None
        else f"full server, {args.workers} worker(s) (nodes on one Redis)"
    )
    load_before = os.getloadavg()[0]
    best, probes = await largest_full(
        relay_fps if args.workers is None else nodes_fps, args.consultations, MAX_CONSULTATIONS
    )
    if args.json:
        payload = {
            "workers": args.workers,
            "consultations": best,
            "probes": [asdict(p) for p in probes],
            "load_before": load_before,
            "load_after": os.getloadavg()[0],
        }
        print(json.dumps(payload, indent=2))
    else:
        print("\n".join(capacity_lines(label, best, probes, MAX_CONSULTATIONS)))
        print(f"load average before / after: {load_before:.2f} / {os.getloadavg()[0]:.2f}")
    return 0


T = TypeVar("T")


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on uvloop when it is installed, else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def main(argv: list[str]) -> int:
    """Entry point for ``teleconsult bench relay``."""
    return run_loop(_run(_parse(argv)))
