"""Wires recording into the app: the ``recording.*`` events, HTTP routes and the retention task."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from recording.files import make_private_dir, restrict_tree
from recording.keys import Keyring, RecordingKeyError, default_key_file, load_keyring
from recording.retention import RetentionSweeper
from recording.service import RecordingConfig, Recordings
from rooms.audit import SYSTEM, AuditAction
from rooms.notify import Notifier
from rooms.service import ConsultationService
from rooms.store import Store
from signaling.recording_events import RecordingEvents
from signaling.server import SignalingGateway
from web.keys import media_registry_key, recordings_key
from web.recording_routes import RecordingRoutes
from web.settings import Settings, SettingsError

logger = logging.getLogger(__name__)

_DAY_S = 86400.0


def recording_keyring(settings: Settings) -> Keyring:
    """The recording keys; refuses production without one (raises :class:`SettingsError`)."""
    try:
        return load_keyring(
            settings.recording_key,
            settings.recording_key_file,
            default_key_file(settings.recordings_dir),
            settings.production,
        )
    except RecordingKeyError as exc:
        raise SettingsError(str(exc)) from exc


def recording_config_from(settings: Settings) -> RecordingConfig:
    return RecordingConfig(
        root=settings.recordings_dir.resolve(), keyring=recording_keyring(settings)
    )


def add_recording(
    app: web.Application,
    settings: Settings,
    service: ConsultationService,
    store: Store,
    notifier: Notifier,
    gateway: SignalingGateway,
) -> None:
    """Build the recording service, its events and routes; its lifetime is a cleanup context.

    The context must come after the media context: the recording service is registered as a
    consultation listener after the media relay's, and reaches the relay it creates.
    """
    config = recording_config_from(settings)
    RecordingRoutes(config).add_to(app.router)
    recordings = Recordings(service, store, lambda: app.get(media_registry_key), notifier, config)
    gateway.add_events(RecordingEvents(recordings).specs())

    async def audit(consultation_id: str, action: AuditAction, details: dict[str, object]) -> None:
        await service.audit(consultation_id, SYSTEM, action, dict(details))

    sweeper = RetentionSweeper(store, config.root, settings.retention_days * _DAY_S, audit)
    app[recordings_key] = recordings

    async def recording_lifetime(app: web.Application) -> AsyncIterator[None]:
        make_private_dir(config.root)
        tightened = await asyncio.to_thread(restrict_tree, config.root)
        if tightened:
            logger.warning("recordings folder: made %d folders/files private", tightened)
        service.add_listener(recordings)
        sweeper.start()
        recordings.start_recovery()
        logger.info(
            "recording ready key_id=%s keys=%d retention_days=%d",
            config.keyring.current_id,
            len(config.keyring.keys),
            settings.retention_days,
        )
        try:
            yield
        finally:
            await sweeper.close()
            await recordings.close()

    app.cleanup_ctx.append(recording_lifetime)
