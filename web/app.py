"""``create_app(settings)``: the composition root that builds and wires every part."""

from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from media.metrics import MediaMetrics
from media.router import MediaRegistry
from recording.service import Recordings
from rooms.service import ConsultationService
from rooms.store import create_store
from signaling.appointment_events import AppointmentEvents
from signaling.auth import TokenAuthority
from signaling.care_events import CareEvents
from signaling.clinical_events import ClinicalEvents
from signaling.consultation_events import ConsultationConnections, ConsultationEvents
from signaling.dispatch import EventLimits
from signaling.guarded_server import ConnectionLimits
from signaling.notifier import SocketNotifier
from signaling.rtc_events import RtcEvents, RtcSignals
from signaling.server import SignalingGateway, create_socket_server
from web.appointments_wiring import scheduling_from, sweeper_from, sweeper_lifetime
from web.invite_routes import add_invite_routes
from web.keys import (
    authority_key,
    care_key,
    consultations_key,
    gateway_key,
    http_refusals_key,
    media_registry_key,
    node_state_key,
    photos_key,
    recordings_key,
    records_key,
    registry_key,
    settings_key,
    sio_key,
    started_at_key,
    store_key,
)
from web.media_wiring import media_config_from, media_lifetime
from web.nodes import add_pinned_listeners, build_node, node_drain, node_lifetime
from web.pages import add_page_routes
from web.photo_routes import add_photo_routes
from web.process_metrics import register_process_gauges
from web.recording_wiring import add_recording, recording_config_from
from web.records_wiring import (
    care_record_from,
    clinical_tools_from,
    records_from,
    records_lifetime,
)
from web.rooms_wiring import consultations_lifetime, ice_server_issuer_from, service_config_from
from web.routes import add_operational_routes
from web.security_headers import install_security_headers
from web.settings import Settings
from web.share_routes import add_share_routes
from web.shutdown import close_client_connections
from web.stats_routes import add_stats_routes

logger = logging.getLogger(__name__)


def socket_origins(settings: Settings) -> tuple[str, ...]:
    """Origins allowed to open a Socket.IO connection: the configured ones, else the origin of
    ``public_url``, else none listed (the server then allows its own origin only)."""
    if settings.allowed_origins or not settings.public_url:
        return settings.allowed_origins
    url = urlsplit(settings.public_url)
    return (f"{url.scheme}://{url.netloc}",)


def create_app(settings: Settings) -> web.Application:
    """Build the aiohttp application with every part, in order, each given the ones it uses.

    Order: metrics → tokens → Socket.IO server and gateway → store, records database,
    notifier, consultation service, care record, photos and chat → media relay and recording
    service → this node (its event filter before any event) → the consultation, care, ``rtc.*`` and
    ``recording.*`` events, and the consultation listeners in the order they act: media,
    recording, the pinned node. Every part and every link between parts is made here; cleanup
    contexts only start what was built and close it (aiohttp runs them in order and closes them
    in reverse); the records database opens first and closes last.
    """
    settings = settings.validated()
    app = web.Application(client_max_size=settings.max_event_bytes * 4)

    registry = CollectorRegistry()
    register_process_gauges(registry)
    metrics = _Counters(registry)

    authority = TokenAuthority(settings.secret)
    redis_options = settings.redis_options()
    sio = create_socket_server(
        settings.store_url if settings.store_backend == "redis" else None,
        redis_options,
        settings.max_event_bytes,
        settings.presence_timeout_s,
        ConnectionLimits(
            settings.max_connections, settings.max_connections_per_address, settings.auth_timeout_s
        ),
        allowed_origins=socket_origins(settings),
        on_refusal=lambda reason: metrics.connection_refusals.labels(reason).inc(),
        websocket_only=settings.workers > 1,
    )
    gateway = SignalingGateway(
        sio,
        authority,
        EventLimits(settings.max_event_bytes, settings.events_per_s, settings.event_burst),
        on_event_result=lambda event, outcome: metrics.events.labels(event, outcome).inc(),
    )
    sio.attach(app)

    store = create_store(settings.store_url, settings.ended_retention_s, redis_options)
    recording_config = recording_config_from(settings)
    records = records_from(settings, recording_config.keyring)
    notifier = SocketNotifier(sio)
    service = ConsultationService(
        store,
        records.audit,
        notifier,
        service_config_from(settings),
        on_limit=lambda limit: metrics.limit_refusals.labels(limit).inc(),
    )
    ice_servers = ice_server_issuer_from(settings)
    signals = RtcSignals(notifier)
    media = MediaRegistry(media_config_from(settings), MediaMetrics(registry), signals)
    care = care_record_from(settings, records, service, store, notifier)
    photos, chat = clinical_tools_from(settings, records, care, store, notifier)
    recordings = Recordings(service, store, records.recordings, media, notifier, recording_config)
    node = build_node(settings, gateway, store, service, notifier, registry, media, recordings)
    scheduling = scheduling_from(settings, records)
    gateway.add_events(ConsultationEvents(service, care, scheduling).specs())
    gateway.add_events(CareEvents(care).specs())
    gateway.add_events(ClinicalEvents(photos, chat).specs())
    gateway.add_events(AppointmentEvents(scheduling).specs())
    gateway.add_listener(
        ConsultationConnections(service, sio, ice_servers, settings.rejoin_grace_s)
    )
    rtc_events = RtcEvents(media, service, signals)
    gateway.add_events(rtc_events.specs())
    service.add_listener(rtc_events)

    app[settings_key] = settings
    app[authority_key] = authority
    app[registry_key] = registry
    app[sio_key] = sio
    app[gateway_key] = gateway
    app[store_key] = store
    app[records_key] = records
    app[care_key] = care
    app[photos_key] = photos
    app[consultations_key] = service
    app[node_state_key] = node
    app[media_registry_key] = media
    app[recordings_key] = recordings
    app[started_at_key] = time.monotonic()
    app[http_refusals_key] = metrics.http_refusals

    install_security_headers(app)
    add_operational_routes(app)
    add_page_routes(app)
    add_invite_routes(app)
    add_share_routes(app)
    add_photo_routes(app)
    add_stats_routes(app)
    recording_lifetime = add_recording(
        app, settings, recording_config, recordings, service, records.recordings, gateway
    )
    add_pinned_listeners(node, service, [rtc_events, recordings])
    app.cleanup_ctx.append(records_lifetime(records, settings))
    app.cleanup_ctx.append(sweeper_lifetime(sweeper_from(settings, records, scheduling, store)))
    app.cleanup_ctx.append(node_lifetime(node, settings))
    app.cleanup_ctx.append(consultations_lifetime(store, service, ice_servers))
    app.cleanup_ctx.append(media_lifetime(media))
    app.cleanup_ctx.append(recording_lifetime)
    app.on_shutdown.append(node_drain(node, settings))
    app.on_shutdown.append(close_client_connections)
    if settings.secret_generated:
        logger.warning(
            "no secret configured: generated one for this process (dev mode); "
            "tokens from other processes will not verify"
        )
    return app


class _Counters:
    """The server's own Prometheus counters (the media relay registers its own)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str, meaning: str, label: str, *more: str) -> Counter:
            return Counter(name, meaning, [label, *more], registry=registry)

        self.events = counter(
            "teleconsult_signaling_events",
            "Client events handled, by event and outcome code",
            "event",
            "outcome",
        )
        self.connection_refusals = counter(
            "teleconsult_connection_refusals",
            "Connections closed or refused and frames refused by the transport guards, by reason",
            "reason",
        )
        self.http_refusals = counter(
            "teleconsult_http_refusals",
            "HTTP requests refused (metrics without its token, netcheck over its rate)",
            "route",
            "reason",
        )
        self.limit_refusals = counter(
            "teleconsult_limit_refusals",
            "Requests refused (or audit entries not kept) because a resource limit was reached",
            "limit",
        )
