"""``teleconsult bench relay --nodes N``: the full server as N nodes on one Redis, under load.

Every node is a real ``teleconsult serve`` process (placement, relay, heartbeats) on a
redis-server this benchmark starts; both are stopped by PID. Each simulated 1:1 consultation has
its outlet connected to one node and its specialist to the next, so with N > 1 their media
requests are relayed to the pinned node; the media (the relay benchmark's pre-encoded VP8 clip
and Opus) flows through whichever node the cluster chose. Reported per node: consultations, CPU
(from /proc/<pid>/stat) per forwarded video+audio stream pair and the frame rate of its streams;
and the relay hop: the round trip of an ``rtc.receive_mode`` request sent on a connection to the
pinned node versus one to another node (p50/p95, and the difference). ``--nodes 1,2`` runs both
and prints the ratio of CPU per stream pair. Bounded: at most 8 nodes, 32 consultations, 120 s.
"""

from __future__ import annotations

import asyncio
import math
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import socketio

from benchmarks._load import Clip, LoadPeer
from benchmarks._processes import free_port, spawn, start_redis, wait_http
from benchmarks.relay import WARMUP_S, _percentile, _process_cpu_s
from rooms.nodes import NodeDirectory
from rooms.roles import Role
from signaling.auth import TokenAuthority

MAX_NODES = 8
_ROW = "{:<8} {:>8} {:>7} {:>11} {:>8} {:>8}"
PROBES = 100
SERVICE = "ophthalmology"


@dataclass
class NodeFigures:
    """One node under the load."""

    node_id: str
    consultations: int
    cpu_pct: float
    cpu_per_stream_pair_pct: float | None
    fps_min: float | None
    fps_median: float | None


@dataclass
class ClusterResult:
    """One run: every node's figures and the relay hop."""

    nodes: int
    consultations: int
    window_s: float
    per_node: list[NodeFigures]
    cpu_per_stream_pair_pct: float
    fps_min: float
    local_request_ms_p50: float | None
    local_request_ms_p95: float | None
    relayed_request_ms_p50: float | None
    relayed_request_ms_p95: float | None
    relay_added_ms_p50: float | None
    relay_added_ms_p95: float | None
    load_cpu_pct: float


class SignalledPeer:
    """A load peer whose signalling is the real Socket.IO protocol on one node."""

    def __init__(self, load: LoadPeer, url: str, token: str) -> None:
        self.load = load
        self.url = url
        self.token = token
        self.client = socketio.AsyncClient(reconnection=False)
        self.consultation_id = ""
        self._negotiation = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self.client.on("rtc.offer", self._on_offer)

    async def connect(self) -> None:
        await self.client.connect(
            self.url, auth={"token": self.token}, transports=["websocket"], wait_timeout=20
        )

    async def ok(self, event: str, payload: dict[str, Any]) -> Any:
        ack = await self.client.call(event, payload, timeout=30)
        if "ok" not in ack:
            raise SystemExit(f"{event} refused: {ack}")
        return ack["ok"]

    async def start_media(self, consultation_id: str) -> None:
        self.consultation_id = consultation_id
        self.load.join_started = time.perf_counter()
        self.load.publish()
        async with self._negotiation:
            offer = await self.load.offer()
            answer = await self.ok("rtc.offer", {"consultation_id": consultation_id, "sdp": offer})
            await self.load.accept(answer["sdp"])

    async def _on_offer(self, data: dict[str, Any]) -> None:
        task = asyncio.create_task(self._answer(str(data["sdp"])))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, sdp: str) -> None:
        async with self._negotiation:
            answer = await self.load.answer(sdp)
        await self.ok("rtc.answer", {"consultation_id": self.consultation_id, "sdp": answer})

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.client.connected:
            await self.client.disconnect()
        await self.load.close()


class Cluster:
    """A redis-server and N ``teleconsult serve`` nodes, started and stopped by PID."""

    def __init__(self, nodes: int, capacity: int, workdir: Path) -> None:
        self.workdir = workdir
        self.secret = secrets.token_urlsafe(48)
        self.authority = TokenAuthority(self.secret)
        self.ports = [free_port() for _ in range(nodes)]
        self.capacity = capacity
        self.redis_url = ""
        self.processes: list[subprocess.Popen[bytes]] = []
        self.redis: subprocess.Popen[bytes] | None = None

    def url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports[index % len(self.ports)]}"

    def node_id(self, index: int) -> str:
        return f"node-{index}"

    async def start(self) -> None:
        self.redis, self.redis_url = await start_redis(self.workdir)
        env = {
            **os.environ,
            "TELECONSULT_SECRET": self.secret,
            "TELECONSULT_NODE_CAPACITY": str(self.capacity),
            "TELECONSULT_EVENTS_PER_S": "500",
            "TELECONSULT_EVENT_BURST": "500",
            "TELECONSULT_MAX_CONNECTIONS_PER_ADDRESS": "1000",
        }
        for index, http_port in enumerate(self.ports):
            command = [sys.executable, "-m", "web.cli", "serve", "--port", str(http_port)]
            command += ["--store", self.redis_url, "--media-ip", "127.0.0.1", "--log-level"]
            command += ["WARNING", "--recordings", str(self.workdir / "recordings")]
            command += ["--records-url", f"sqlite:///{self.workdir / 'records.db'}"]
            command += ["--node-id", self.node_id(index)]
            log = self.workdir / f"node-{index}.log"
            self.processes.append(spawn(command, env, log))
        for index, process in enumerate(self.processes):
            await wait_http(f"{self.url(index)}/healthz", process)

    def token(self, role: Role, subject: str) -> str:
        services = [SERVICE] if role is Role.SPECIALIST else []
        return self.authority.issue(role, subject, subject, services, ttl_s=3600)

    def stop(self) -> None:
        for process in [*self.processes, self.redis]:
            if process is not None and process.poll() is None:
                process.terminate()
        for process in [*self.processes, self.redis]:
            if process is None:
                continue
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _open_consultation(
    cluster: Cluster, clip: Clip, index: int
) -> tuple[str, SignalledPeer, SignalledPeer]:
    outlet_id, doctor_id = f"outlet-{index}", f"dr-{index}"
    outlet = SignalledPeer(
        LoadPeer(outlet_id, clip, index * 7),
        cluster.url(index),
        cluster.token(Role.OUTLET, outlet_id),
    )
    doctor = SignalledPeer(
        LoadPeer(doctor_id, clip, index * 11),
        cluster.url(index + 1),
        cluster.token(Role.SPECIALIST, doctor_id),
    )
    outlet.load.partner_log, doctor.load.partner_log = doctor.load.log, outlet.load.log
    await outlet.connect()
    await doctor.connect()
    checked = await outlet.ok(
        "consultation.check_in",
        {
            "service": SERVICE,
            "outlet_id": outlet_id,
            "patient_ref": f"P-{index}",
            "guardian_present": True,
        },
    )
    consultation_id = str(checked["consultation_id"])
    await doctor.ok("consultation.accept", {"consultation_id": consultation_id, "pick": True})
    await outlet.ok("consultation.join", {"consultation_id": consultation_id})
    await outlet.start_media(consultation_id)
    await doctor.start_media(consultation_id)
    return consultation_id, outlet, doctor


async def _probe(peer: SignalledPeer) -> list[float]:
    """Round trips of ``rtc.receive_mode`` on the participant's own connection."""
    payload = {"consultation_id": peer.consultation_id, "video": True}
    times = []
    for _ in range(PROBES):
        started = time.perf_counter()
        await peer.ok("rtc.receive_mode", payload)
        times.append((time.perf_counter() - started) * 1000)
    return times


async def measure_cluster(
    clip: Clip, nodes: int, consultations: int, window_s: float
) -> ClusterResult:
    """Run the load on ``nodes`` nodes and return the figures."""
    with tempfile.TemporaryDirectory(prefix="teleconsult-bench-nodes-") as workdir:
        cluster = Cluster(nodes, math.ceil(consultations / nodes), Path(workdir))
        peers: list[tuple[str, SignalledPeer, SignalledPeer]] = []
        directory: NodeDirectory | None = None
        try:
            await cluster.start()
            directory = NodeDirectory(cluster.redis_url)
            for index in range(consultations):
                peers.append(await _open_consultation(cluster, clip, index))
            await asyncio.sleep(WARMUP_S)
            pinned = {cid: await directory.pin_of(cid) for cid, _, _ in peers}
            everyone = [p.load for _, outlet, doctor in peers for p in (outlet, doctor)]
            for load in everyone:
                for counter in load.streams.values():
                    counter.reset_window()
            pids = [process.pid for process in cluster.processes]
            load_cpu_start = time.process_time()
            cpu_start, started = [_process_cpu_s(pid) for pid in pids], time.perf_counter()
            await asyncio.sleep(window_s)
            cpu_end, elapsed = [_process_cpu_s(pid) for pid in pids], time.perf_counter() - started
            load_cpu = time.process_time() - load_cpu_start

            per_node = []
            for index in range(nodes):
                node_id = cluster.node_id(index)
                mine = [(o, d) for cid, o, d in peers if pinned[cid] == node_id]
                fps = [
                    counter.frames / elapsed
                    for pair in mine
                    for peer in pair
                    for counter in peer.load.streams.values()
                    if counter.kind == "video"
                ]
                cpu = (cpu_end[index] - cpu_start[index]) / elapsed * 100
                per_node.append(
                    NodeFigures(
                        node_id,
                        len(mine),
                        round(cpu, 1),
                        round(cpu / (2 * len(mine)), 2) if mine else None,
                        round(min(fps), 1) if fps else None,
                        round(statistics.median(fps), 1) if fps else None,
                    )
                )
            # The outlet is connected to one node, the specialist to the next: with two or more
            # nodes one of them reaches the pinned node directly, the other through the relay.
            first_id, first_outlet, first_doctor = peers[0]
            local: list[float] = []
            relayed: list[float] = []
            for peer in (first_outlet, first_doctor):
                times = await _probe(peer)
                direct = peer.url == cluster.url(int(str(pinned[first_id]).rsplit("-", 1)[1]))
                (local if direct or nodes == 1 else relayed).extend(times)
            loaded = [n for n in per_node if n.consultations]
            local_p50, local_p95 = _percentile(local, 0.5), _percentile(local, 0.95)
            relayed_p50, relayed_p95 = _percentile(relayed, 0.5), _percentile(relayed, 0.95)
            return ClusterResult(
                nodes=nodes,
                consultations=consultations,
                window_s=round(elapsed, 1),
                per_node=per_node,
                cpu_per_stream_pair_pct=round(
                    sum(n.cpu_pct for n in loaded) / (2 * consultations), 2
                ),
                fps_min=min((n.fps_min or 0.0) for n in loaded),
                local_request_ms_p50=local_p50,
                local_request_ms_p95=local_p95,
                relayed_request_ms_p50=relayed_p50,
                relayed_request_ms_p95=relayed_p95,
                relay_added_ms_p50=_difference(relayed_p50, local_p50),
                relay_added_ms_p95=_difference(relayed_p95, local_p95),
                load_cpu_pct=round(load_cpu / elapsed * 100, 1),
            )
        finally:
            for _, outlet, doctor in peers:
                await outlet.close()
                await doctor.close()
            if directory is not None:
                await directory.close()
            cluster.stop()


def _difference(a: float | None, b: float | None) -> float | None:
    return round(a - b, 2) if a is not None and b is not None else None


def cluster_table(results: list[ClusterResult]) -> str:
    """Per-node rows for each run, then the relay hop and the scaling ratio."""
    lines = []
    for result in results:
        lines.append(
            f"{result.nodes} node(s), {result.consultations} consultations, "
            f"{result.window_s} s window, load process CPU {result.load_cpu_pct} %"
        )
        lines.append(
            "  " + _ROW.format("node", "consult.", "CPU %", "CPU/pair %", "fps min", "fps med")
        )
        for node in result.per_node:
            cells = [
                node.consultations,
                node.cpu_pct,
                node.cpu_per_stream_pair_pct,
                node.fps_min,
                node.fps_median,
            ]
            lines.append(
                "  " + _ROW.format(node.node_id, *(str(c).replace("None", "-") for c in cells))
            )
        lines.append(
            f"  CPU per video+audio stream pair, all nodes: {result.cpu_per_stream_pair_pct} %"
        )
        lines.append(
            f"  rtc request on the pinned node p50/p95: {result.local_request_ms_p50} / "
            f"{result.local_request_ms_p95} ms; relayed from another node: "
            f"{result.relayed_request_ms_p50} / {result.relayed_request_ms_p95} ms; "
            f"added by the relay: {result.relay_added_ms_p50} / {result.relay_added_ms_p95} ms"
        )
    if len(results) > 1:
        base = results[0].cpu_per_stream_pair_pct
        for result in results[1:]:
            ratio = result.cpu_per_stream_pair_pct / max(base, 0.01)
            lines.append(
                f"CPU per stream pair, {result.nodes} nodes / {results[0].nodes}: {ratio:.2f}"
            )
    return "\n".join(lines)


def cluster_json(results: list[ClusterResult], clip: Clip) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "clip_video_kbps": round(clip.video_kbps, 1),
        "results": [asdict(r) for r in results],
    }
    if len(results) > 1:
        base = results[0].cpu_per_stream_pair_pct
        payload["cpu_per_stream_pair_ratio"] = {
            str(r.nodes): round(r.cpu_per_stream_pair_pct / max(base, 0.01), 3) for r in results
        }
    return payload
