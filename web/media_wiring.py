"""The media relay's part of the settings, and its lifetime in the app (closing it)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from media.config import IceServerConfig, MediaConfig
from media.congestion import CongestionConfig
from media.router import MediaRegistry
from web.keys import CleanupContext
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


def media_lifetime(media: MediaRegistry) -> CleanupContext:
    """The media relay needs no start; on shutdown close every router it holds."""

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await media.close()
            logger.info("media relay closed")

    return lifetime
