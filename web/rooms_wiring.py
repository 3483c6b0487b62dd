"""Wires the consultation domain into the app: store, service, events, connection hooks."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import Counter

from rooms.service import ConsultationService, ServiceConfig
from rooms.store import create_store
from signaling.consultation_events import ConsultationConnections, ConsultationEvents
from signaling.ice_servers import IceServerIssuer
from signaling.notifier import SocketNotifier
from signaling.turn import TurnPolicy
from web.keys import (
    consultations_key,
    gateway_key,
    notifier_key,
    registry_key,
    settings_key,
    sio_key,
    store_key,
)
from web.settings import Settings

logger = logging.getLogger(__name__)


def service_config_from(settings: Settings) -> ServiceConfig:
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


async def rooms_context(app: web.Application) -> AsyncIterator[None]:
    """Create the store and the consultation service; close both on shutdown."""
    settings = app[settings_key]
    sio = app[sio_key]
    store = create_store(settings.store_url, settings.ended_retention_s)
    notifier = SocketNotifier(sio)
    refusals = Counter(
        "teleconsult_limit_refusals",
        "Requests refused (or audit entries not kept) because a resource limit was reached",
        ["limit"],
        registry=app[registry_key],
    )
    service = ConsultationService(
        store,
        notifier,
        service_config_from(settings),
        on_limit=lambda limit: refusals.labels(limit).inc(),
    )
    gateway = app[gateway_key]
    gateway.add_events(ConsultationEvents(service).specs())
    ice_servers = ice_server_issuer_from(settings)
    gateway.add_listener(
        ConsultationConnections(service, sio, ice_servers, settings.rejoin_grace_s)
    )
    app[store_key] = store
    app[notifier_key] = notifier
    app[consultations_key] = service
    await service.start()
    logger.info("consultation service started store=%s", store.backend)
    try:
        yield
    finally:
        await ice_servers.close()
        await service.close()
        await store.close()
        logger.info("consultation service closed store=%s", store.backend)
