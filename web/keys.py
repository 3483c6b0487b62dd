"""Typed application state keys, and the shape of a part's lifetime, declared in one place."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import socketio
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from media.router import MediaRegistry
from recording.service import Recordings
from records.care import CareRecord
from records.facade import Records
from records.photo_service import PhotoService
from rooms.service import ConsultationService
from rooms.store import Store
from signaling.auth import TokenAuthority
from signaling.server import SignalingGateway
from signaling.token_bucket import KeyedBuckets
from web.node_state import NodeState
from web.settings import Settings
from web.vendor import VendorFiles

CleanupContext = Callable[[web.Application], AsyncIterator[None]]
"""A part's start-up and shutdown, as ``app.cleanup_ctx`` takes it."""

ShutdownStep = Callable[[web.Application], Awaitable[None]]
"""Work done as shutdown begins, before the cleanup contexts close, as ``app.on_shutdown`` takes
it."""

settings_key = web.AppKey("settings", Settings)
authority_key = web.AppKey("authority", TokenAuthority)
registry_key = web.AppKey("metrics_registry", CollectorRegistry)
sio_key = web.AppKey("sio", socketio.AsyncServer)
started_at_key = web.AppKey("started_at", float)
store_key = web.AppKey("store", Store)
records_key = web.AppKey("records", Records)
care_key = web.AppKey("care", CareRecord)
photos_key = web.AppKey("photos", PhotoService)
consultations_key = web.AppKey("consultations", ConsultationService)
netcheck_limiter_key = web.AppKey("netcheck_limiter", KeyedBuckets[str])
vendor_files_key = web.AppKey("vendor_files", VendorFiles)
http_refusals_key = web.AppKey("http_refusals", Counter)
node_state_key = web.AppKey("node_state", NodeState)
# Read by no handler: they give whoever holds the running app (the test suite) its gateway,
# media relay and recording service.
gateway_key = web.AppKey("gateway", SignalingGateway)
media_registry_key = web.AppKey("media_registry", MediaRegistry)
recordings_key = web.AppKey("recordings", Recordings)
