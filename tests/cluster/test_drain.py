"""SIGTERM drains a node: its consultations move to another node and it exits in time."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.cluster.harness import (
    FollowingClient,
    admin_on,
    consultation_across,
    node_views,
    spawn_nodes,
    stop_nodes,
)
from tests.media.clients import ClientPeer, assert_see_and_hear_each_other
from tests.signaling.consultation_peers import Cast

COLOURS = [
    ((220, 40, 40), 440.0),
    ((40, 200, 60), 660.0),
    ((40, 60, 220), 550.0),
    ((200, 200, 40), 770.0),
]


async def test_sigterm_moves_two_live_consultations_and_the_node_exits_in_time(
    tmp_path: Path, redis_url: str
) -> None:
    nodes = await spawn_nodes(
        tmp_path, redis_url, {"node-a": 0, "node-b": 0, "node-c": 4}, relay_timeout_s="3.0"
    )
    on_a, on_b = Cast(nodes["node-a"]), Cast(nodes["node-b"])
    clients: list[FollowingClient] = []
    try:
        pairs = []
        for i in range(2):
            consultation_id, outlet, doctor = await consultation_across(
                on_a, on_b, f"outlet-{i}", f"dr-{i}"
            )
            pair = []
            for peer, subject, (rgb, hz) in (
                (outlet, f"outlet-{i}", COLOURS[2 * i]),
                (doctor, f"dr-{i}", COLOURS[2 * i + 1]),
            ):
                client = FollowingClient(peer, ClientPeer(subject, rgb=rgb, hz=hz), consultation_id)
                clients.append(client)
                await client.start()
                pair.append(client)
            pairs.append(pair)
        for first, second in pairs:
            await assert_see_and_hear_each_other(first.media, second.media)
        nodes.update(await spawn_nodes(tmp_path, redis_url, {"node-d": 4}))
        admin = await admin_on(on_a)
        assert (await node_views(admin))["node-c"]["consultations"] == 2

        elapsed, output = await nodes["node-c"].stop(signal.SIGTERM, within_s=30)
        assert "drain: moved 2 consultations node=node-c complete=True" in output, output[-3000:]
        assert elapsed < 10.0, f"node-c took {elapsed:.1f}s to exit"
        for client in clients:
            assert [m["reason"] for m in client.moves] == ["drain"]
            assert client.moves[0]["node_id"] == "node-d"
        for first, second in pairs:
            await first.renegotiated.wait()
            await second.renegotiated.wait()
            await assert_see_and_hear_each_other(first.media, second.media)
        views = await node_views(admin)
        assert views["node-d"]["consultations"] == 2 and "node-c" not in views
    finally:
        for client in clients:
            await client.close()
        await on_a.close()
        await on_b.close()
        await stop_nodes(nodes)
