"""Wires the media relay into the app: registry, ``rtc.*`` events, rooms listener, shutdown."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from media.config import IceServerConfig, MediaConfig
from media.congestion import CongestionConfig
from media.metrics import MediaMetrics
from media.router import MediaRegistry
from signaling.auth import Identity
from signaling.rtc_events import Membership, RtcEvents, RtcSignals, SubjectEmitter
from web.keys import (
    gateway_key,
    media_registry_key,
    registry_key,
    rtc_events_key,
    settings_key,
    sio_key,
)
from web.settings import Settings

logger = logging.getLogger(__name__)

CleanupContext = Callable[[web.Application], AsyncIterator[None]]


def media_config_from(settings: Settings) -> MediaConfig:
    """The media part of the server settings."""
    return MediaConfig(
        media_ips=settings.media_ips,
        announced_ip=settings.announced_ip,
        udp_ports=settings.media_udp_ports,
        ice_servers=tuple(
            IceServerConfig(s.urls, s.username, s.credential) for s in settings.ice_servers
        ),
        stats_interval_s=settings.stats_interval_s,
        congestion=CongestionConfig(video_min_kbps=settings.video_min_kbps),
        max_remote_candidates=settings.max_candidates_per_peer,
    )


class SubjectRooms:
    """Puts each connection in a Socket.IO room per subject, and emits to it.

    Works across processes with the Redis manager. Used when the app has no notifier of its own.
    """

    def __init__(self, sio: Any) -> None:
        self._sio = sio

    @staticmethod
    def room_of(subject: str) -> str:
        return f"subject:{subject}"

    async def on_connect(self, sid: str, identity: Identity) -> None:
        await self._sio.enter_room(sid, self.room_of(identity.subject))

    async def on_disconnect(self, sid: str, identity: Identity) -> None:
        """Socket.IO leaves rooms on disconnect by itself."""

    async def to_subject(self, subject: str, event: str, payload: dict[str, Any]) -> None:
        await self._sio.emit(event, payload, room=self.room_of(subject))


def media_context(
    membership_of: Callable[[web.Application], Membership],
    emitter_of: Callable[[web.Application], SubjectEmitter] | None = None,
) -> CleanupContext:
    """The cleanup context that runs the media relay for this app.

    ``membership_of(app)`` returns the consultation service (``require_participant`` and
    ``add_listener``); ``emitter_of(app)`` an object with ``to_subject`` (default: Socket.IO
    rooms per subject, see :class:`SubjectRooms`).
    """

    async def run_media(app: web.Application) -> AsyncIterator[None]:
        gateway = app[gateway_key]
        membership = membership_of(app)
        if emitter_of is not None:
            emitter = emitter_of(app)
        else:
            rooms = SubjectRooms(app[sio_key])
            gateway.add_listener(rooms)
            emitter = rooms
        signals = RtcSignals(emitter)
        registry = MediaRegistry(
            media_config_from(app[settings_key]), MediaMetrics(app[registry_key]), signals
        )
        events = RtcEvents(registry, membership, signals)
        gateway.add_events(events.specs())
        add_listener = getattr(membership, "add_listener", None)
        if add_listener is not None:
            add_listener(events)
        app[media_registry_key] = registry
        app[rtc_events_key] = events
        yield
        await registry.close()
        logger.info("media relay closed")

    return run_media
