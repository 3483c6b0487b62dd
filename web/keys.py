"""Typed application state keys, and the shape of a part's lifetime, declared in one place."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import socketio
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from media.router import MediaRegistry
from recording.service import Recordings
from rooms.service import ConsultationService
from rooms.store import Store
from signaling.auth import TokenAuthority
from signaling.rtc_events import RtcEvents
from signaling.server import SignalingGateway
from signaling.token_bucket import KeyedBuckets
from web.node_state import NodeState
from web.settings import Settings

CleanupContext = Callable[[web.Application], AsyncIterator[None]]
"""A part's start-up and shutdown, as ``app.cleanup_ctx`` takes it."""

settings_key = web.AppKey("settings", Settings)
authority_key = web.AppKey("authority", TokenAuthority)
registry_key = web.AppKey("metrics_registry", CollectorRegistry)
sio_key = web.AppKey("sio", socketio.AsyncServer)
gateway_key = web.AppKey("gateway", SignalingGateway)
started_at_key = web.AppKey("started_at", float)
media_registry_key = web.AppKey("media_registry", MediaRegistry)
store_key = web.AppKey("store", Store)
consultations_key = web.AppKey("consultations", ConsultationService)
recordings_key = web.AppKey("recordings", Recordings)
netcheck_limiter_key = web.AppKey("netcheck_limiter", KeyedBuckets[str])
http_refusals_key = web.AppKey("http_refusals", Counter)
rtc_events_key = web.AppKey("rtc_events", RtcEvents)
node_state_key = web.AppKey("node_state", NodeState)
