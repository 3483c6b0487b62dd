"""The consultation domain's settings mapping and its lifetime in the app."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from rooms.service import ConsultationService, ServiceConfig
from rooms.store import Store
from signaling.ice_servers import IceServerIssuer
from signaling.turn import TurnPolicy
from web.keys import CleanupContext
from web.settings import Settings

logger = logging.getLogger(__name__)


def service_config_from(settings: Settings) -> ServiceConfig:
    """The consultation service's part of the server settings."""
    return ServiceConfig(
        offer_timeout_s=settings.offer_timeout_s,
        rejoin_grace_s=settings.rejoin_grace_s,
        empty_room_grace_s=settings.empty_room_grace_s,
        presence_timeout_s=settings.presence_timeout_s,
        max_open_per_outlet=settings.max_open_consultations_per_outlet,
        max_invites_per_consultation=settings.max_invites_per_consultation,
        max_audit_per_action=settings.max_audit_entries_per_action,
        queue_push_entries=settings.queue_push_entries,
        audit_page_max=settings.audit_page_max,
        preferred_clinician_wait_s=settings.preferred_clinician_wait_s,
    )


def ice_server_issuer_from(settings: Settings) -> IceServerIssuer:
    """Static STUN/TURN servers plus per-connection TURN credentials when ``turn_urls`` is set."""
    turn = (
        TurnPolicy(settings.turn_urls, settings.turn_secret, settings.turn_ttl_s)
        if settings.turn_urls
        else None
    )
    return IceServerIssuer(
        [s.as_client_dict() for s in settings.ice_servers], turn, settings.ice_transport_policy
    )


def consultations_lifetime(
    store: Store, service: ConsultationService, ice_servers: IceServerIssuer
) -> CleanupContext:
    """Start the service's background round; on shutdown close the service, then the store."""

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        await service.start()
        logger.info("consultation service started store=%s", store.backend)
        try:
            yield
        finally:
            await ice_servers.close()
            await service.close()
            await store.close()
            logger.info("consultation service closed store=%s", store.backend)

    return lifetime
