"""Moving consultations' media to another node: a lost node's (detected by its expired
heartbeat) or a draining node's (planned).

Each move re-pins the consultation, audits ``media_moved``, tells the new node (which continues a
running recording as a new segment) and then pushes ``media.moved`` to the participants, who
renegotiate with a fresh ``rtc.offer`` that now runs on the new node.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from rooms.audit import SYSTEM, AuditAction
from rooms.errors import ClusterFull, NodeUnavailable, StoreUnavailable
from rooms.models import ConsultationState
from rooms.notify import Notifier
from rooms.rules import audience
from rooms.store import Store
from signaling.media_placement import Auditor, MediaPlacement
from signaling.node_relay import Body, NodeRelay

logger = logging.getLogger(__name__)

MoveReason = Literal["node_lost", "drain"]
AdoptHandler = Callable[[str, str], Awaitable[None]]

_LOST_LOCK_TTL_S = 30.0


class MediaMoves:
    """Re-pins consultations away from a node and tells everyone concerned."""

    def __init__(
        self,
        relay: NodeRelay,
        placement: MediaPlacement,
        store: Store,
        auditor: Auditor,
        notifier: Notifier,
    ) -> None:
        self._relay = relay
        self._placement = placement
        self._store = store
        self._auditor = auditor
        self._notifier = notifier
        self._adopters: list[AdoptHandler] = []
        relay.serve("adopt", self._serve_adopt)

    def add_adopter(self, handler: AdoptHandler) -> None:
        """``handler(consultation_id, from_node)`` runs on the node a consultation moved to,
        before its participants are told (recording continues there)."""
        self._adopters.append(handler)

    async def recover_lost(self) -> int:
        """Move the consultations of every lost node (one node at a time takes each); returns how
        many moved."""
        store = self._store
        directory = self._placement.directory
        moved = 0
        for node in await directory.lost_nodes():
            if node == self._relay.node_id:
                continue
            lock = f"node-lost:{node}"
            if not await store.try_lock(lock, self._relay.node_id, _LOST_LOCK_TTL_S):
                continue
            try:
                logger.warning("node lost node=%s: moving its consultations", node)
                done, count = await self.move_all(node, "node_lost")
                moved += count
                if done:
                    await directory.forget(node)
            finally:
                await store.release_lock(lock, self._relay.node_id)
        return moved

    async def move_all(self, node: str, reason: MoveReason) -> tuple[bool, int]:
        """Move every consultation pinned to ``node``: (all moved, how many moved)."""
        pins = await self._placement.directory.pins_of(node)
        # Independent consultations move together: a drain has a bounded time for all of them.
        results = await asyncio.gather(*(self.move(cid, node, reason) for cid in pins))
        return all(results), sum(results)

    async def move(self, consultation_id: str, node: str, reason: MoveReason) -> bool:
        """Move one consultation off ``node``; ``False`` if no other node can take it now."""
        directory = self._placement.directory
        consultation = await self._store.get_consultation(consultation_id)
        if consultation is None or consultation.state is ConsultationState.ENDED:
            await directory.unpin(consultation_id)
            return True
        try:
            placement = await directory.place(consultation_id, away_from=node)
        except ClusterFull:
            logger.error(
                "media move impossible consultation=%s node=%s: cluster full", consultation_id, node
            )
            return False
        details = {"from": node, "to": placement.node_id, "reason": reason}
        await self._auditor.audit(consultation_id, SYSTEM, AuditAction.MEDIA_MOVED, details)
        logger.info(
            "media moved consultation=%s from=%s to=%s reason=%s",
            consultation_id,
            node,
            placement.node_id,
            reason,
        )
        try:
            await self._relay.request(
                placement.node_id, "adopt", {"consultation_id": consultation_id, "from": node}
            )
        except NodeUnavailable:
            logger.warning(
                "new node did not confirm consultation=%s node=%s",
                consultation_id,
                placement.node_id,
            )
        payload: dict[str, Any] = {
            "consultation_id": consultation_id,
            "node_id": placement.node_id,
            "reason": reason,
        }
        notifier = self._notifier
        for subject in audience(consultation):
            await notifier.to_subject(subject, "media.moved", payload)
        return True

    async def _serve_adopt(self, body: Body) -> Body:
        consultation_id, from_node = str(body["consultation_id"]), str(body["from"])
        for adopter in self._adopters:
            try:
                await adopter(consultation_id, from_node)
            except (StoreUnavailable, NodeUnavailable):
                logger.warning("adopting failed consultation=%s", consultation_id)
        return {"ok": True}
