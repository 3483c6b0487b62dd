"""Wires this process in as a node: heartbeat, placement, relay of media requests, moves, drain.

Without a Redis store the process is a single node and nothing here runs (the embedded default).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence

from aiohttp import web
from prometheus_client import CollectorRegistry

from media.router import MediaRegistry
from recording.service import Recordings
from rooms.errors import StoreUnavailable
from rooms.nodes import NodeDirectory, NodeRecord
from rooms.notify import ConsultationListener, Notifier
from rooms.service import ConsultationService
from rooms.store import Store
from signaling.media_moves import MediaMoves
from signaling.media_placement import MediaPlacement
from signaling.node_relay import NodeRelay
from signaling.pinned_events import PinnedEvents, PinnedListeners
from signaling.server import SignalingGateway
from web.keys import CleanupContext, ShutdownStep
from web.node_state import ClusterParts, Heartbeat, LoadMeter, NodeState, Watchdog, default_node_id
from web.settings import Settings

logger = logging.getLogger(__name__)


def media_address(settings: Settings) -> str:
    """The address this node's media is reached at (announced, else the first media IP)."""
    return settings.announced_ip or (settings.media_ips[0] if settings.media_ips else settings.host)


def build_node(
    settings: Settings,
    gateway: SignalingGateway,
    store: Store,
    service: ConsultationService,
    notifier: Notifier,
    metrics: CollectorRegistry,
    media: MediaRegistry,
    recordings: Recordings,
) -> NodeState:
    """This process as a node. With a Redis store it joins the cluster: the gateway's event
    filter is installed here, so it must run before any event is registered. ``media`` is
    measured for the node's load; ``recordings`` continue the recordings of consultations
    moved here."""
    node_id = settings.node_id or default_node_id()
    if settings.store_backend != "redis" or settings.store_url is None:
        return NodeState(node_id)
    url = settings.store_url
    options = settings.redis_options()
    directory = NodeDirectory(url, options)
    relay = NodeRelay(url, node_id, settings.relay_timeout_s, options)
    placement = MediaPlacement(directory, store, service)
    gateway.add_event_filter(PinnedEvents(relay, placement).wrap)
    moves = MediaMoves(relay, placement, store, service, notifier)

    async def continue_recording(consultation_id: str, from_node: str) -> None:
        await recordings.continue_moved(consultation_id)

    moves.add_adopter(continue_recording)
    meter = LoadMeter(media, metrics)
    started_at = time.time()

    def record(draining: bool) -> NodeRecord:
        return NodeRecord(
            node_id,
            media_address(settings),
            settings.node_capacity,
            started_at,
            meter.measure(),
            draining,
        )

    async def carried() -> list[str]:
        """Consultations with media on this node that are still open (an ended one's pin is
        gone for good, even if its media has not closed yet)."""
        open_ids = {c.id for c in await store.open_consultations()}
        return [i for i in media.consultation_ids() if i in open_ids]

    heartbeat = Heartbeat(
        directory, record, settings.node_heartbeat_s, settings.node_ttl_s, carried
    )
    watchdog = Watchdog(moves, directory, settings.node_heartbeat_s, settings.node_ttl_s)
    return NodeState(node_id, ClusterParts(directory, relay, placement, moves, heartbeat, watchdog))


def node_lifetime(state: NodeState, settings: Settings) -> CleanupContext:
    """Join the cluster on startup (relay, heartbeat, watchdog), leave it on shutdown; nothing
    to do for the one node without Redis."""

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        parts = state.cluster
        if parts is None:
            yield
            return
        await parts.relay.start()
        await parts.heartbeat.start()
        await _move_stale_pins(parts.moves, parts.directory, state.node_id)
        parts.watchdog.start()
        logger.info(
            "node joined the cluster node=%s capacity=%d media=%s",
            state.node_id,
            settings.node_capacity,
            media_address(settings),
        )
        try:
            yield
        finally:
            await parts.watchdog.stop()
            await parts.heartbeat.stop(state.node_id)
            await parts.relay.close()
            await parts.directory.close()
            logger.info("node left the cluster node=%s", state.node_id)

    return lifetime


async def _move_stale_pins(moves: MediaMoves, directory: NodeDirectory, node_id: str) -> None:
    """A node restarted under its old id (a restarted worker) has no media for the consultations
    still pinned to it: move them, so their participants renegotiate."""
    try:
        if await directory.pins_of(node_id):
            done, moved = await moves.move_all(node_id, "node_lost")
            logger.warning("moved %d consultations left by this node's previous run", moved)
    except StoreUnavailable:
        logger.warning("could not check for consultations left by a previous run")


def add_pinned_listeners(
    state: NodeState, service: ConsultationService, local: Sequence[ConsultationListener]
) -> None:
    """In a cluster, room changes also reach the consultation's pinned node, where ``local``
    (this node's media and recording listeners, registered before) act on them."""
    parts = state.cluster
    if parts is not None:
        service.add_listener(PinnedListeners(parts.relay, parts.placement, local))


def node_drain(state: NodeState, settings: Settings) -> ShutdownStep:
    """On shutdown: take no new consultations and move this node's media elsewhere (bounded)."""

    async def drain_node(app: web.Application) -> None:
        parts = state.cluster
        if parts is None:
            return

        async def drain() -> tuple[bool, int]:
            await parts.heartbeat.drain()
            return await parts.moves.move_all(state.node_id, "drain")

        try:
            async with asyncio.timeout(settings.drain_timeout_s):
                done, moved = await drain()
        except (TimeoutError, StoreUnavailable):
            logger.warning("drain: not finished in time node=%s", state.node_id)
            return
        logger.info("drain: moved %d consultations node=%s complete=%s", moved, state.node_id, done)

    return drain_node
