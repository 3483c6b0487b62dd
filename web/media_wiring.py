"""Wires the media relay into the app: registry, ``rtc.*`` events, rooms listener, shutdown."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from media.config import IceServerConfig, MediaConfig
from media.congestion import CongestionConfig
from media.metrics import MediaMetrics
from media.router import MediaRegistry
from signaling.rtc_events import Membership, RtcEvents, RtcSignals, SubjectEmitter
from web.keys import (
    CleanupContext,
    gateway_key,
    media_registry_key,
    registry_key,
    rtc_events_key,
    settings_key,
)
from web.settings import Settings

logger = logging.getLogger(__name__)


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


def media_context(
    membership_of: Callable[[web.Application], Membership],
    emitter_of: Callable[[web.Application], SubjectEmitter],
) -> CleanupContext:
    """The cleanup context that runs the media relay for this app.

    ``membership_of(app)`` returns the consultation service (``require_participant`` and
    ``add_listener``); ``emitter_of(app)`` what reaches a participant's connections
    (``to_subject``).
    """

    async def run_media(app: web.Application) -> AsyncIterator[None]:
        gateway = app[gateway_key]
        membership = membership_of(app)
        signals = RtcSignals(emitter_of(app))
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
