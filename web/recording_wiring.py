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
from rooms.service import ConsultationService
from rooms.store import RecordingIndex
from signaling.recording_events import RecordingEvents
from signaling.server import SignalingGateway
from web.keys import CleanupContext
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
    config: RecordingConfig,
    recordings: Recordings,
    service: ConsultationService,
    index: RecordingIndex,
    gateway: SignalingGateway,
) -> CleanupContext:
    """Wire the recording service in: its events, its HTTP routes and its place among the
    consultation listeners (call it after the media relay's listener is added: it reads the
    relay). Returns its lifetime, for after the media relay's: the recordings folder made
    private, the retention sweeper and the recovery of recordings a crash left; closing."""
    RecordingRoutes(config).add_to(app.router)
    gateway.add_events(RecordingEvents(recordings).specs())
    service.add_listener(recordings)

    async def audit(consultation_id: str, action: AuditAction, details: dict[str, object]) -> None:
        await service.audit(consultation_id, SYSTEM, action, dict(details))

    sweeper = RetentionSweeper(index, config.root, settings.retention_days * _DAY_S, audit)

    async def recording_lifetime(app: web.Application) -> AsyncIterator[None]:
        make_private_dir(config.root)
        tightened = await asyncio.to_thread(restrict_tree, config.root)
        if tightened:
            logger.warning("recordings folder: made %d folders/files private", tightened)
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

    return recording_lifetime
