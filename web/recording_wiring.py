"""Wires recording into the app: the ``recording.*`` events, HTTP routes and the retention task."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from media.recording_files import make_private_dir, restrict_tree
from media.recording_keys import Keyring, RecordingKeyError, default_key_file, load_keyring
from media.retention import RetentionSweeper
from rooms.audit import SYSTEM
from signaling.recording_events import RecordingConfig, Recordings
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
        make_private_dir(config.root)
        tightened = await asyncio.to_thread(restrict_tree, config.root)
        if tightened:
            logger.warning("recordings folder: made %d folders/files private", tightened)
        recordings = Recordings(
            service, store, lambda: app.get(media_registry_key), app[notifier_key], config
        )
        app[gateway_key].add_events(recordings.specs())
        service.add_listener(recordings)

        async def audit(consultation_id: str, action: str, details: dict[str, object]) -> None:
            await service.audit(consultation_id, SYSTEM, action, dict(details))

        sweeper = RetentionSweeper(store, config.root, settings.retention_days * _DAY_S, audit)
        sweeper.start()
        recordings.start_recovery()
        app[recordings_key] = recordings
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

    app.cleanup_ctx.append(recording_context)
