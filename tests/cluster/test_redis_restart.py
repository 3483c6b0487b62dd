"""Redis restarts under a running cluster: nodes re-register and relayed requests go on."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from rooms.models import ConsultationState
from rooms.nodes import NodeDirectory
from rooms.store import create_store
from tests.cluster.harness import consultation_across
from tests.conftest import free_port, start_redis, start_server
from tests.signaling.consultation_peers import Cast
from web.settings import Settings


async def live_nodes(directory: NodeDirectory) -> list[str]:
    try:
        return [view.node_id for view in await directory.nodes() if view.live]
    except Exception:
        return []


async def test_nodes_re_register_and_relay_after_a_redis_restart(
    tmp_path: Path, test_settings: Settings
) -> None:
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    redis = start_redis(redis_dir, durable=True)
    base = replace(
        test_settings,
        store_url=redis.url,
        node_heartbeat_s=0.3,
        node_ttl_s=1.5,
        relay_timeout_s=1.0,
    )
    signalling = await start_server(replace(base, node_id="node-a", node_capacity=0))
    media = await start_server(replace(base, node_id="node-c", node_capacity=3, port=free_port()))
    directory = NodeDirectory(redis.url)
    cast = Cast(signalling)
    try:
        consultation_id, _, doctor = await consultation_across(cast, cast)
        ref = {"consultation_id": consultation_id}
        assert (await doctor.ok("recording.state", ref))["active"] is False  # answered by node-c

        redis.process.terminate()
        redis.process.wait(timeout=10)
        assert (await doctor.call("recording.state", ref))["error"]["code"] == "unavailable"
        await asyncio.sleep(2.0)  # longer than the TTL: every heartbeat key has expired
        redis = start_redis(redis_dir, port=redis.port, durable=True)

        for _ in range(50):
            if await live_nodes(directory) == ["node-a", "node-c"]:
                break
            await asyncio.sleep(0.2)
        assert await live_nodes(directory) == ["node-a", "node-c"]
        for _ in range(50):
            ack = await doctor.call("recording.state", ref)
            if "ok" in ack:
                break
            await asyncio.sleep(0.2)
        assert ack["ok"]["consultation_id"] == consultation_id, ack
        # The outage is longer than the presence timeout: nobody may be judged silent for it.
        store = create_store(redis.url)
        try:
            consultation = await store.get_consultation(consultation_id)
        finally:
            await store.close()
        assert consultation is not None and consultation.state is ConsultationState.ACTIVE
        assert all(p.connected for p in consultation.participants.values())
        assert await directory.pin_of(consultation_id) == "node-c"  # not moved by the outage
        await asyncio.sleep(2 * base.node_ttl_s)
        assert await directory.pin_of(consultation_id) == "node-c"
    finally:
        await cast.close()
        await directory.close()
        await signalling.runner.cleanup()
        await media.runner.cleanup()
        redis.process.terminate()
        redis.process.wait(timeout=10)
