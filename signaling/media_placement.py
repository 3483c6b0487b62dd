"""Pinning a consultation's media to a node: at accept, or on first media use if it has none.

Placement happens before the accept is carried out, so a full cluster refuses the accept with
``cluster_full`` (the consultation stays offered or queued) instead of activating a consultation
no node can carry. Every pin and move is audited.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from rooms.audit import SYSTEM, AuditAction
from rooms.models import ConsultationState
from rooms.nodes import NodeDirectory, Placement
from rooms.notify import Actor
from rooms.store import Store

logger = logging.getLogger(__name__)


class Auditor(Protocol):
    """Appends to a consultation's audit log (the consultation service fits)."""

    async def audit(
        self, consultation_id: str, actor: Actor, action: AuditAction, details: dict[str, Any]
    ) -> None: ...


class MediaPlacement:
    """Reserves, confirms and releases pins, and pins an active consultation that has none."""

    def __init__(
        self,
        directory: NodeDirectory,
        store: Store,
        auditor: Auditor,
    ) -> None:
        self.directory = directory
        self._store = store
        self._auditor = auditor

    async def reserve(self, consultation_id: str) -> Placement:
        """Pin (or keep the pin of) a consultation about to become active; may raise
        :class:`rooms.errors.ClusterFull`."""
        return await self.directory.place(consultation_id)

    async def confirm(self, consultation_id: str, placement: Placement, actor: Actor) -> None:
        """The consultation is active on ``placement``: audit the pin if it is new."""
        if placement.previous != placement.node_id:
            await self._audit_pin(consultation_id, placement, actor)

    async def release(self, consultation_id: str, placement: Placement) -> None:
        """The accept did not happen: drop a pin made for it."""
        if placement.new:
            await self.directory.unpin(consultation_id)

    async def pinned_node(self, consultation_id: str) -> str | None:
        """The node carrying the consultation's media; an active consultation without a pin
        (accepted before the cluster ran, or its pin lost with Redis) is placed now."""
        node = await self.directory.pin_of(consultation_id)
        if node is not None:
            return node
        consultation = await self._store.get_consultation(consultation_id)
        if consultation is None or consultation.state is not ConsultationState.ACTIVE:
            return None
        placement = await self.directory.place(consultation_id)
        await self._audit_pin(consultation_id, placement, SYSTEM)
        return placement.node_id

    async def _audit_pin(self, consultation_id: str, placement: Placement, actor: Actor) -> None:
        await self._auditor.audit(
            consultation_id, actor, AuditAction.MEDIA_PINNED, {"node": placement.node_id}
        )
        logger.info("media pinned consultation=%s node=%s", consultation_id, placement.node_id)
