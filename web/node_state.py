"""This process's node: its id and, in a cluster, the parts that keep it in the cluster."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from media.router import MediaRegistry
from rooms.errors import StoreUnavailable
from rooms.nodes import NodeDirectory, NodeLoad, NodeRecord, NodeView
from rooms.tasks import cancel_and_wait
from signaling.media_moves import MediaMoves
from signaling.media_placement import MediaPlacement
from signaling.node_relay import NodeRelay

logger = logging.getLogger(__name__)


def default_node_id() -> str:
    """Host name, process id and a random suffix: unique even when a process id is reused."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:4]}"


class LoadMeter:
    """This node's load from its media registry, its metrics and the OS's CPU accounting."""

    def __init__(self, media: MediaRegistry, metrics: CollectorRegistry) -> None:
        self._media = media
        self._metrics = metrics
        self._last = (time.monotonic(), self._cpu_s(), self._packets())

    @staticmethod
    def _cpu_s() -> float:
        times = os.times()
        return times.user + times.system

    def _packets(self) -> float:
        return sum(
            self._metrics.get_sample_value(
                "teleconsult_media_forwarded_packets_total", {"kind": kind}
            )
            or 0.0
            for kind in ("audio", "video")
        )

    def measure(self) -> NodeLoad:
        now, cpu, packets = time.monotonic(), self._cpu_s(), self._packets()
        then, cpu_then, packets_then = self._last
        self._last = (now, cpu, packets)
        elapsed = max(now - then, 1e-3)
        return NodeLoad(
            routers=len(self._media),
            peers=int(self._metrics.get_sample_value("teleconsult_media_peers") or 0),
            packets_per_s=round((packets - packets_then) / elapsed, 1),
            cpu_pct=round(100.0 * (cpu - cpu_then) / elapsed, 1),
        )


@dataclass
class Heartbeat:
    """Publishes this node's record every ``interval_s`` with a TTL; keeps going through Redis
    outages (the node re-registers as soon as Redis answers).

    The first beat after an outage also restores the pins of the consultations this node
    carries (``carried``): a Redis restarted without them, or a replica promoted before it
    received the last writes, would otherwise send their next media request to another node.
    """

    directory: NodeDirectory
    record: Callable[[bool], NodeRecord]
    interval_s: float
    ttl_s: float
    carried: Callable[[], Awaitable[list[str]]]
    draining: bool = False
    _unreachable: bool = field(default=False, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)

    async def start(self) -> None:
        await self.beat()
        self._task = asyncio.create_task(self._run(), name="node-heartbeat")

    async def beat(self) -> bool:
        record = self.record(self.draining)
        try:
            await self.directory.heartbeat(record, self.ttl_s)
            if self._unreachable:
                restored = await self.directory.restore_pins(record.node_id, await self.carried())
                logger.info("heartbeat: redis back, restored %d pins", restored)
        except StoreUnavailable:
            if not self._unreachable:
                logger.warning("heartbeat: redis unreachable")
            self._unreachable = True
            return False
        self._unreachable = False
        return True

    async def drain(self) -> None:
        """Stop taking new consultations: say so at once, not at the next beat."""
        self.draining = True
        await self.beat()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.beat()

    async def stop(self, node_id: str) -> None:
        await cancel_and_wait(self._task)
        try:
            await self.directory.stop_heartbeat(node_id)
        except StoreUnavailable:
            logger.warning("heartbeat: could not leave the node set (redis unreachable)")


@dataclass
class Watchdog:
    """Every interval, reads the node list (kept for /healthz) and moves lost nodes' media.

    After Redis was unreachable every node's heartbeat may have expired meanwhile: nodes are
    judged again only once Redis has answered for a whole TTL (time for them to beat again).
    """

    moves: MediaMoves
    directory: NodeDirectory
    interval_s: float
    ttl_s: float
    views: list[NodeView] = field(default_factory=list)
    _reachable_since: float | None = field(default=None, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)

    def start(self) -> None:
        self._reachable_since = time.monotonic()
        self._task = asyncio.create_task(self._run(), name="node-watchdog")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                self.views = await self.directory.nodes()
                now = time.monotonic()
                self._reachable_since = self._reachable_since or now
                settled = now - self._reachable_since >= self.ttl_s
                if settled and any(not view.live for view in self.views):
                    await self.moves.recover_lost()
            except StoreUnavailable:
                self._reachable_since = None
                logger.warning("watchdog: redis unreachable")
            except Exception:
                logger.exception("watchdog round failed")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)


@dataclass
class ClusterParts:
    """What runs this node inside a cluster."""

    directory: NodeDirectory
    relay: NodeRelay
    placement: MediaPlacement
    moves: MediaMoves
    heartbeat: Heartbeat
    watchdog: Watchdog


@dataclass
class NodeState:
    """This process as a node; ``cluster`` is ``None`` for a single process without Redis."""

    node_id: str
    cluster: ClusterParts | None = None

    def health(self) -> dict[str, object]:
        """For /healthz: minimal facts, no addresses."""
        if self.cluster is None:
            return {"id": self.node_id, "cluster": False}
        views = self.cluster.watchdog.views
        return {
            "id": self.node_id,
            "cluster": True,
            "draining": self.cluster.heartbeat.draining,
            "live_nodes": sum(1 for view in views if view.live),
            "lost_nodes": sum(1 for view in views if not view.live),
        }
