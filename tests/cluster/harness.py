"""Server processes as cluster nodes on one Redis, and media clients that follow a moved
consultation (``media.moved``) by renegotiating, as the pages do."""

from __future__ import annotations

import asyncio
import base64
import secrets
from pathlib import Path
from typing import Any

from rooms.roles import Role
from tests.media.clients import ClientPeer
from tests.server_process import ServerProcess, spawn_server
from tests.signaling.consultation_peers import Cast, Peer, check_in_payload
from tests.signaling.test_rtc_events import MediaClient

FAST_NODES = {"TELECONSULT_NODE_HEARTBEAT_S": "0.5", "TELECONSULT_NODE_TTL_S": "2.5"}
# Nodes share one recording key, as machines of one deployment do (see docs/deploy.md).
RECORDING_KEY = base64.b64encode(secrets.token_bytes(32)).decode()


async def spawn_nodes(
    tmp: Path, redis_url: str, capacities: dict[str, int], **settings: str
) -> dict[str, ServerProcess]:
    """One ``teleconsult serve`` per node id, started together, sharing one recordings folder
    and key (as machines share storage)."""
    env = {
        **FAST_NODES,
        "TELECONSULT_RECORDING_KEY": RECORDING_KEY,
        **{f"TELECONSULT_{k.upper()}": v for k, v in settings.items()},
    }

    async def spawn(node_id: str, capacity: int) -> ServerProcess:
        return await spawn_server(
            tmp / "recordings",
            "--store",
            redis_url,
            env={**env, "TELECONSULT_NODE_ID": node_id, "TELECONSULT_NODE_CAPACITY": str(capacity)},
        )

    servers = await asyncio.gather(*(spawn(n, c) for n, c in capacities.items()))
    return dict(zip(capacities, servers, strict=True))


async def stop_nodes(nodes: dict[str, ServerProcess]) -> None:
    for node in nodes.values():
        await node.ensure_stopped()


async def consultation_across(
    outlets: Cast, clinicians: Cast, outlet_id: str = "outlet-1", doctor_id: str = "dr-1"
) -> tuple[str, Peer, Peer]:
    """An active consultation: the outlet on one node, the specialist on another."""
    outlet = await outlets.outlet(outlet_id)
    checked = await outlet.ok("consultation.check_in", check_in_payload(outlet_id))
    consultation_id = str(checked["consultation_id"])
    doctor = await clinicians.specialist(doctor_id)
    await doctor.ok("consultation.accept", {"consultation_id": consultation_id, "pick": True})
    await outlet.ok("consultation.join", {"consultation_id": consultation_id})
    return consultation_id, outlet, doctor


class FollowingClient(MediaClient):
    """A media client that, told ``media.moved``, starts a fresh peer connection."""

    def __init__(self, peer: Peer, media: ClientPeer, consultation_id: str) -> None:
        super().__init__(peer, media, consultation_id)
        self.moves: list[dict[str, Any]] = []
        self.renegotiated = asyncio.Event()
        self._following: asyncio.Task[None] | None = None

    async def start(self, trickle: bool = False) -> None:
        await super().start(trickle)
        if self._following is None:
            self._following = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        while True:
            moved = await self.peer.next("media.moved", within_s=3600)
            self.moves.append(moved)
            old = self.media
            self.media = ClientPeer(old.participant_id, rgb=old.rgb, hz=old.hz)
            await old.close()
            await self.media.negotiate(self._exchange)
            self.renegotiated.set()

    async def _exchange(self, offer: str) -> str:
        ack = await self.peer.ok(
            "rtc.offer", {"consultation_id": self.consultation_id, "sdp": offer}
        )
        return str(ack["sdp"])

    async def close(self) -> None:
        if self._following is not None:
            self._following.cancel()
            await asyncio.gather(self._following, return_exceptions=True)
        await super().close()


async def node_views(admin: Peer) -> dict[str, dict[str, Any]]:
    overview = await admin.ok("admin.overview", {})
    return {node["node_id"]: node for node in overview["nodes"]}


async def admin_on(cast: Cast) -> Peer:
    return await cast.join(Role.ADMIN, "admin-1")
