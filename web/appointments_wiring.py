"""Wires appointments in: the scheduling service, its events, the sweep (no-shows and
reminders) and the programme figures route."""

from __future__ import annotations

from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

from aiohttp import web

from records.appointment_sweep import AppointmentSweeper
from records.facade import Records
from records.reminder_webhook import ReminderWebhook, WebhookConfig
from records.scheduling import Scheduling, SchedulingConfig
from rooms.store import Store
from web.keys import CleanupContext
from web.settings import Settings


def scheduling_from(settings: Settings, records: Records) -> Scheduling:
    return Scheduling(
        records,
        SchedulingConfig(ZoneInfo(settings.timezone), settings.no_show_after_min * 60.0),
    )


def sweeper_from(
    settings: Settings, records: Records, scheduling: Scheduling, store: Store
) -> AppointmentSweeper:
    """The sweep, with the reminder webhook when ``reminder_webhook_url`` is set."""
    webhook = None
    if settings.reminder_webhook_url is not None:
        webhook = ReminderWebhook(
            records.database,
            WebhookConfig(
                settings.reminder_webhook_url,
                settings.reminder_webhook_secret,
                settings.reminder_tries,
            ),
            scheduling.zone,
        )
    return AppointmentSweeper(
        records,
        scheduling,
        store,
        webhook,
        settings.appointment_sweep_s,
        settings.reminder_lead_h * 3600.0,
    )


def sweeper_lifetime(sweeper: AppointmentSweeper) -> CleanupContext:
    """Start the sweep once the records are open; stop it before they close."""

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        sweeper.start()
        try:
            yield
        finally:
            await sweeper.close()

    return lifetime
