"""``teleconsult serve --workers 2``: two node processes behind one port, websocket only."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import aiohttp

from tests.cluster.harness import FAST_NODES, RECORDING_KEY, FollowingClient, consultation_across
from tests.media.clients import ClientPeer, assert_see_and_hear_each_other
from tests.server_process import spawn_server
from tests.signaling.consultation_peers import Cast


async def test_two_workers_share_one_port_and_carry_a_call(tmp_path: Path, redis_url: str) -> None:
    server = await spawn_server(
        tmp_path / "recordings",
        "--store",
        redis_url,
        "--workers",
        "2",
        "--node-id",
        "box",
        env={**FAST_NODES, "TELECONSULT_RECORDING_KEY": RECORDING_KEY},
    )
    cast = Cast(server)
    clients: list[FollowingClient] = []
    try:
        seen: set[str] = set()
        async with aiohttp.ClientSession() as http:
            for _ in range(300):  # each request on a new connection: the kernel spreads them
                with contextlib.suppress(aiohttp.ClientError):  # a worker still starting
                    async with http.get(
                        f"{server.url}/healthz", headers={"Connection": "close"}
                    ) as response:
                        seen.add((await response.json())["node"]["id"])
                if len(seen) == 2:
                    break
                await asyncio.sleep(0.1)
            assert seen == {"box-w0", "box-w1"}
            polling = f"{server.url}/socket.io/?EIO=4&transport=polling"
            async with http.get(polling) as response:
                assert response.status == 400  # long-polling could land on the other worker

        consultation_id, outlet, doctor = await consultation_across(cast, cast)
        for peer, subject, rgb in (
            (outlet, "outlet-1", (220, 40, 40)),
            (doctor, "dr-1", (40, 200, 60)),
        ):
            client = FollowingClient(peer, ClientPeer(subject, rgb=rgb), consultation_id)
            clients.append(client)
            await client.start()
        await assert_see_and_hear_each_other(clients[0].media, clients[1].media)
    finally:
        for client in clients:
            await client.close()
        await cast.close()
        if server.process.returncode is None:
            elapsed, output = await server.stop(signal.SIGTERM, within_s=40)
            assert "all workers stopped" in output, output[-2000:]
        await asyncio.sleep(0)
