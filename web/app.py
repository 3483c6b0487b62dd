"""``create_app(settings)``: the composition root that builds and wires every part."""

from __future__ import annotations

import logging
import time

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from signaling.auth import TokenAuthority
from signaling.server import SignalingGateway, create_socket_server
from web.invite_routes import add_invite_routes
from web.keys import (
    authority_key,
    consultations_key,
    gateway_key,
    notifier_key,
    registry_key,
    settings_key,
    sio_key,
    started_at_key,
)
from web.media_wiring import media_context
from web.pages import add_page_routes
from web.recording_wiring import add_recording
from web.rooms_wiring import rooms_context
from web.routes import add_operational_routes
from web.settings import Settings

logger = logging.getLogger(__name__)


def create_app(settings: Settings) -> web.Application:
    """Build the aiohttp application with the Socket.IO server mounted on it."""
    settings = settings.validated()
    app = web.Application(client_max_size=settings.max_event_bytes * 4)
    registry = CollectorRegistry()
    events = Counter(
        "teleconsult_signaling_events",
        "Client events handled, by event and outcome code",
        ["event", "outcome"],
        registry=registry,
    )
    authority = TokenAuthority(settings.secret)
    sio = create_socket_server(
        settings.store_url if settings.store_backend == "redis" else None,
        settings.max_event_bytes,
        settings.presence_timeout_s,
    )
    gateway = SignalingGateway(
        sio,
        authority,
        settings.max_event_bytes,
        on_event_result=lambda event, outcome: events.labels(event, outcome).inc(),
    )
    sio.attach(app)

    app[settings_key] = settings
    app[authority_key] = authority
    app[registry_key] = registry
    app[sio_key] = sio
    app[gateway_key] = gateway
    app[started_at_key] = time.monotonic()
    add_operational_routes(app)
    add_page_routes(app)
    add_invite_routes(app)
    app.cleanup_ctx.append(rooms_context)
    app.cleanup_ctx.append(media_context(lambda a: a[consultations_key], lambda a: a[notifier_key]))
    add_recording(app)
    if settings.secret_generated:
        logger.warning(
            "no secret configured: generated one for this process (dev mode); "
            "tokens from other processes will not verify"
        )
    return app
