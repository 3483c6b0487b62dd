"""Node heartbeats and media placement on a real redis-server."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from rooms.errors import ClusterFull
from rooms.nodes import NodeDirectory, NodeLoad, NodeRecord


def record(node_id: str, capacity: int, draining: bool = False, cpu: float = 0.0) -> NodeRecord:
    return NodeRecord(node_id, "127.0.0.1", capacity, 0.0, NodeLoad(cpu_pct=cpu), draining)


@pytest.fixture
async def directory(redis_url: str) -> AsyncIterator[NodeDirectory]:
    nodes = NodeDirectory(redis_url)
    yield nodes
    await nodes.close()


async def test_ten_consultations_spread_by_load_and_a_full_node_gets_none(
    directory: NodeDirectory,
) -> None:
    await directory.heartbeat(record("node-a", 3), 30)
    for i in range(3):  # node-a is at its maximum before the others join and the ten arrive
        await directory.place(f"earlier-{i}")
    await directory.heartbeat(record("node-b", 10), 30)
    await directory.heartbeat(record("node-c", 10, cpu=50.0), 30)
    assert await directory.pins_of("node-a") == ["earlier-0", "earlier-1", "earlier-2"]

    placements = await asyncio.gather(*(directory.place(f"c-{i}") for i in range(10)))
    spread = Counter(p.node_id for p in placements)
    assert spread == {"node-b": 5, "node-c": 5}, spread
    assert all(p.new for p in placements)
    views = {view.node_id: view for view in await directory.nodes()}
    assert [views[n].consultations for n in ("node-a", "node-b", "node-c")] == [3, 5, 5]


async def test_a_pin_is_kept_while_its_node_lives_and_moves_when_asked(
    directory: NodeDirectory,
) -> None:
    await directory.heartbeat(record("node-a", 5), 30)
    first = await directory.place("c-1")
    await directory.heartbeat(record("node-b", 5), 30)
    again = await directory.place("c-1")
    assert again.node_id == first.node_id == "node-a" and not again.moved
    moved = await directory.place("c-1", away_from="node-a")
    assert moved.node_id == "node-b" and moved.previous == "node-a" and moved.moved
    assert await directory.pins_of("node-a") == []
    assert await directory.pins_of("node-b") == ["c-1"]


async def test_draining_and_lost_nodes_get_nothing_and_lost_pins_move(
    directory: NodeDirectory,
) -> None:
    await directory.heartbeat(record("node-a", 5), 0.4)
    await directory.heartbeat(record("node-b", 5, draining=True), 30)
    assert (await directory.place("c-1")).node_id == "node-a"
    await asyncio.sleep(0.6)  # node-a's heartbeat expires
    assert await directory.lost_nodes() == ["node-a"]
    with pytest.raises(ClusterFull):
        await directory.place("c-1")  # the draining node takes nothing
    await directory.heartbeat(record("node-c", 5), 30)
    moved = await directory.place("c-1")
    assert (moved.node_id, moved.previous) == ("node-c", "node-a")
    await directory.forget("node-a")
    assert [v.node_id for v in await directory.nodes()] == ["node-b", "node-c"]


async def test_a_full_cluster_refuses(directory: NodeDirectory) -> None:
    await directory.heartbeat(record("node-a", 1), 30)
    await directory.heartbeat(record("node-b", 1), 30)
    await directory.heartbeat(record("signalling-only", 0), 30)
    await directory.place("c-1")
    await directory.place("c-2")
    with pytest.raises(ClusterFull) as refused:
        await directory.place("c-3")
    assert refused.value.code == "cluster_full"
    assert await directory.pin_of("c-3") is None
    await directory.unpin("c-1")
    assert (await directory.place("c-3")).node_id in {"node-a", "node-b"}


async def test_nodes_command_lists_live_and_lost_nodes(
    directory: NodeDirectory, redis_url: str
) -> None:
    await directory.heartbeat(record("node-a", 4), 30)
    await directory.heartbeat(record("node-b", 4), 0.3)
    await directory.place("c-1")
    await asyncio.sleep(0.5)  # node-b's heartbeat expires; it stays listed as lost
    command = [sys.executable, "-m", "web.cli", "nodes", "--store", redis_url]
    listed = await asyncio.to_thread(
        subprocess.run, [*command, "--json"], capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 1, listed.stderr  # a node is lost
    rows = {row["node_id"]: row for row in json.loads(listed.stdout)["nodes"]}
    assert rows["node-a"]["live"] and rows["node-a"]["consultations"] == 1
    assert rows["node-a"]["capacity"] == 4 and rows["node-a"]["media_address"] == "127.0.0.1"
    assert rows["node-b"]["live"] is False
    table = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=60
    )
    assert "LOST" in table.stdout and "node-a" in table.stdout
