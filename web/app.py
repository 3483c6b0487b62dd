"""``create_app(settings)``: the composition root that builds and wires every part."""

from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from signaling.auth import TokenAuthority
from signaling.dispatch import EventLimits
from signaling.guarded_server import ConnectionLimits
from signaling.server import SignalingGateway, create_socket_server
from web.invite_routes import add_invite_routes
from web.keys import (
    authority_key,
    consultations_key,
    gateway_key,
    http_refusals_key,
    notifier_key,
    registry_key,
    settings_key,
    sio_key,
    started_at_key,
)
from web.media_wiring import media_context
from web.nodes import attach_pinned_listeners, cluster_context, drain_node
from web.pages import add_page_routes
from web.process_metrics import register_process_gauges
from web.recording_wiring import add_recording
from web.rooms_wiring import rooms_context
from web.routes import add_operational_routes
from web.security_headers import install_security_headers
from web.settings import Settings
from web.shutdown import close_client_connections

logger = logging.getLogger(__name__)


def socket_origins(settings: Settings) -> tuple[str, ...]:
    """Origins allowed to open a Socket.IO connection: the configured ones, else the origin of
    ``public_url``, else none listed (the server then allows its own origin only)."""
    if settings.allowed_origins or not settings.public_url:
        return settings.allowed_origins
    url = urlsplit(settings.public_url)
    return (f"{url.scheme}://{url.netloc}",)


def create_app(settings: Settings) -> web.Application:
    """Build the aiohttp application with the Socket.IO server mounted on it."""
    settings = settings.validated()
    app = web.Application(client_max_size=settings.max_event_bytes * 4)
    registry = CollectorRegistry()
    register_process_gauges(registry)
    events = Counter(
        "teleconsult_signaling_events",
        "Client events handled, by event and outcome code",
        ["event", "outcome"],
        registry=registry,
    )
    refusals = Counter(
        "teleconsult_connection_refusals",
        "Connections closed or refused and frames refused by the transport guards, by reason",
        ["reason"],
        registry=registry,
    )
    authority = TokenAuthority(settings.secret)
    sio = create_socket_server(
        settings.store_url if settings.store_backend == "redis" else None,
        settings.max_event_bytes,
        settings.presence_timeout_s,
        ConnectionLimits(
            settings.max_connections, settings.max_connections_per_address, settings.auth_timeout_s
        ),
        allowed_origins=socket_origins(settings),
        on_refusal=lambda reason: refusals.labels(reason).inc(),
        websocket_only=settings.workers > 1,
    )
    gateway = SignalingGateway(
        sio,
        authority,
        EventLimits(settings.max_event_bytes, settings.events_per_s, settings.event_burst),
        on_event_result=lambda event, outcome: events.labels(event, outcome).inc(),
    )
    sio.attach(app)

    app[settings_key] = settings
    app[authority_key] = authority
    app[registry_key] = registry
    app[sio_key] = sio
    app[gateway_key] = gateway
    app[started_at_key] = time.monotonic()
    app[http_refusals_key] = Counter(
        "teleconsult_http_refusals",
        "HTTP requests refused (metrics without its token, netcheck over its rate)",
        ["route", "reason"],
        registry=registry,
    )
    install_security_headers(app)
    add_operational_routes(app)
    add_page_routes(app)
    add_invite_routes(app)
    app.cleanup_ctx.append(cluster_context)
    app.cleanup_ctx.append(rooms_context)
    app.cleanup_ctx.append(media_context(lambda a: a[consultations_key], lambda a: a[notifier_key]))
    add_recording(app)
    app.on_startup.append(attach_pinned_listeners)
    app.on_shutdown.append(drain_node)
    app.on_shutdown.append(close_client_connections)
    if settings.secret_generated:
        logger.warning(
            "no secret configured: generated one for this process (dev mode); "
            "tokens from other processes will not verify"
        )
    return app
