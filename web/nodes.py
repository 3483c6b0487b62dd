"""Wires this process in as a node: heartbeat, placement, relay of media requests, moves, drain.

Without a Redis store the process is a single node and nothing here runs (the embedded default).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

from aiohttp import web

from rooms.errors import StoreUnavailable
from rooms.nodes import NodeDirectory, NodeRecord
from signaling.media_moves import MediaMoves
from signaling.media_placement import MediaPlacement
from signaling.node_relay import NodeRelay
from signaling.pinned_events import PinnedEvents, PinnedListeners
from web.keys import (
    consultations_key,
    gateway_key,
    media_registry_key,
    node_state_key,
    notifier_key,
    recordings_key,
    registry_key,
    rtc_events_key,
    settings_key,
    store_key,
)
from web.node_state import ClusterParts, Heartbeat, LoadMeter, NodeState, Watchdog, default_node_id
from web.settings import Settings

logger = logging.getLogger(__name__)


def media_address(settings: Settings) -> str:
    """The address this node's media is reached at (announced, else the first media IP)."""
    return settings.announced_ip or (settings.media_ips[0] if settings.media_ips else settings.host)


async def cluster_context(app: web.Application) -> AsyncIterator[None]:
    """Join the cluster (Redis store) or run as the one node; leave it on shutdown.

    Must run before the rooms, media and recording contexts: it installs the gateway's event
    filter before they register their events.
    """
    settings = app[settings_key]
    node_id = settings.node_id or default_node_id()
    if settings.store_backend != "redis" or settings.store_url is None:
        app[node_state_key] = NodeState(node_id)
        yield
        return
    url = settings.store_url
    directory = NodeDirectory(url)
    relay = NodeRelay(url, node_id, settings.relay_timeout_s)
    placement = MediaPlacement(directory, lambda: app[store_key], lambda: app[consultations_key])
    app[gateway_key].add_event_filter(PinnedEvents(relay, placement).wrap)
    moves = MediaMoves(
        relay,
        placement,
        lambda: app[store_key],
        lambda: app[consultations_key],
        lambda: app[notifier_key],
    )

    async def continue_recording(consultation_id: str, from_node: str) -> None:
        if recordings_key in app:
            await app[recordings_key].continue_moved(consultation_id)

    moves.add_adopter(continue_recording)
    meter = LoadMeter(lambda: app.get(media_registry_key), app[registry_key])
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

    heartbeat = Heartbeat(directory, record, settings.node_heartbeat_s, settings.node_ttl_s)
    watchdog = Watchdog(moves, directory, settings.node_heartbeat_s, settings.node_ttl_s)
    await relay.start()
    await heartbeat.start()
    await _move_stale_pins(moves, directory, node_id)
    watchdog.start()
    app[node_state_key] = NodeState(
        node_id, ClusterParts(directory, relay, placement, moves, heartbeat, watchdog)
    )
    logger.info(
        "node joined the cluster node=%s capacity=%d media=%s",
        node_id,
        settings.node_capacity,
        media_address(settings),
    )
    try:
        yield
    finally:
        await watchdog.stop()
        await heartbeat.stop(node_id)
        await relay.close()
        await directory.close()
        logger.info("node left the cluster node=%s", node_id)


async def _move_stale_pins(moves: MediaMoves, directory: NodeDirectory, node_id: str) -> None:
    """A node restarted under its old id (a restarted worker) has no media for the consultations
    still pinned to it: move them, so their participants renegotiate."""
    try:
        if await directory.pins_of(node_id):
            done, moved = await moves.move_all(node_id, "node_lost")
            logger.warning("moved %d consultations left by this node's previous run", moved)
    except StoreUnavailable:
        logger.warning("could not check for consultations left by a previous run")


async def attach_pinned_listeners(app: web.Application) -> None:
    """On startup, once every context is up: room changes reach the consultation's pinned node."""
    parts = app[node_state_key].cluster
    if parts is None:
        return

    def local_listeners() -> list[object]:
        return [app[rtc_events_key], *([app[recordings_key]] if recordings_key in app else [])]

    app[consultations_key].add_listener(
        PinnedListeners(parts.relay, parts.placement, local_listeners)  # type: ignore[arg-type]
    )


async def drain_node(app: web.Application) -> None:
    """On shutdown: take no new consultations and move this node's media elsewhere (bounded)."""
    parts = app[node_state_key].cluster
    if parts is None:
        return
    settings = app[settings_key]
    node_id = app[node_state_key].node_id

    async def drain() -> tuple[bool, int]:
        await parts.heartbeat.drain()
        return await parts.moves.move_all(node_id, "drain")

    try:
        done, moved = await asyncio.wait_for(drain(), settings.drain_timeout_s)
    except (TimeoutError, StoreUnavailable):
        logger.warning("drain: not finished in time node=%s", node_id)
        return
    logger.info("drain: moved %d consultations node=%s complete=%s", moved, node_id, done)
