"""Wires the records database in: built from the settings, opened (migrated) first at start,
fed by the consultation milestones, closed last."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from recording.keys import Keyring
from records.care import CareConfig, CareRecord
from records.chat_service import ChatConfig, ChatService
from records.consultation_audit import ConsultationAudit
from records.facade import Records
from records.keeper import RecordKeeper
from records.known_consultations import KnownConsultations
from records.photo_service import PhotoConfig, PhotoService
from records.photos import PhotoLimits
from records.redis_import import import_from_redis
from records.shares import ShareRules
from records.templates import Templates
from rooms.service import ConsultationService
from rooms.store import Store
from signaling.notifier import SocketNotifier
from web.keys import CleanupContext
from web.settings import Settings

logger = logging.getLogger(__name__)

MAX_WRONG_PINS = 5


def records_from(settings: Settings, keyring: Keyring) -> Records:
    """The records facades over the configured database (not opened yet)."""
    rules = ShareRules(
        timedelta(days=settings.report_share_days),
        MAX_WRONG_PINS,
        timedelta(seconds=settings.report_share_lock_s),
    )
    return Records(settings.records_url, keyring, rules)


def care_record_from(
    settings: Settings,
    records: Records,
    service: ConsultationService,
    store: Store,
    notifier: SocketNotifier,
) -> CareRecord:
    """The care record, and the visits and consent evidence it reads kept in step with the
    consultations."""
    service.add_records_listener(RecordKeeper(records.visits, records.consents, time.time))
    return CareRecord(
        records,
        service,
        store,
        notifier,
        Templates(dict(settings.report_templates)),
        CareConfig(settings.report_edit_hours * 3600.0, settings.max_audit_entries_per_action),
    )


def clinical_tools_from(
    settings: Settings,
    records: Records,
    care: CareRecord,
    store: Store,
    notifier: SocketNotifier,
) -> tuple[PhotoService, ChatService]:
    """Photos and chat, over the live consultations and, once they are gone, their visits."""
    known = KnownConsultations(store, records.visits)
    audit = ConsultationAudit(records.audit, settings.max_audit_entries_per_action, time.time)
    photos = PhotoService(
        records,
        known,
        care,
        notifier,
        audit,
        PhotoConfig(
            settings.photo_max_bytes,
            settings.photo_max_pixels,
            PhotoLimits(
                settings.photo_max_per_consultation,
                settings.photo_pending_uploads,
                timedelta(seconds=settings.photo_upload_ttl_s),
            ),
        ),
    )
    chat = ChatService(records, known, notifier, audit, ChatConfig(settings.chat_max_messages))
    return photos, chat


def records_lifetime(records: Records, settings: Settings) -> CleanupContext:
    """Open the records first (migrations, the one-time Redis import), close them last."""

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        await records.open()
        if settings.store_backend == "redis" and settings.store_url:
            await import_from_redis(records.database, settings.store_url, settings.redis_options())
        try:
            yield
        finally:
            await records.close()

    return lifetime
