"""Wires recording into the app: the ``recording.*`` events, HTTP routes and the retention task."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from media.recording_files import parse_key
from media.retention import RetentionSweeper
from signaling.recording_events import RecordingConfig, Recordings, SystemActor
from web.keys import (
    consultations_key,
    gateway_key,
    media_registry_key,
    notifier_key,
    recordings_key,
    settings_key,
    store_key,
)
from web.recording_routes import RecordingRoutes
from web.settings import Settings

logger = logging.getLogger(__name__)

_DAY_S = 86400.0


def recording_config_from(settings: Settings) -> RecordingConfig:
    return RecordingConfig(
        root=settings.recordings_dir.resolve(), key=parse_key(settings.recording_key)
    )


def add_recording(app: web.Application) -> None:
    """Register the recording routes now and the recording service as a cleanup context.

    The context must come after the rooms and media contexts (it uses the store, the consultation
    service and the media registry they create).
    """
    settings = app[settings_key]
    config = recording_config_from(settings)
    RecordingRoutes(config).add_to(app.router)

    async def recording_context(app: web.Application) -> AsyncIterator[None]:
        service = app[consultations_key]
        store = app[store_key]
        config.root.mkdir(parents=True, exist_ok=True)
        recordings = Recordings(
            service, store, lambda: app.get(media_registry_key), app[notifier_key], config
        )
        app[gateway_key].add_events(recordings.specs())
        service.add_listener(recordings)

        async def audit(consultation_id: str, action: str, details: dict[str, object]) -> None:
            await service.audit(consultation_id, SystemActor(), action, dict(details))

        sweeper = RetentionSweeper(store, config.root, settings.retention_days * _DAY_S, audit)
        sweeper.start()
        recordings.start_recovery()
        app[recordings_key] = recordings
        logger.info(
            "recording ready encrypted=%s retention_days=%d",
            config.key is not None,
            settings.retention_days,
        )
        try:
            yield
        finally:
            await sweeper.close()
            await recordings.close()

    app.cleanup_ctx.append(recording_context)
