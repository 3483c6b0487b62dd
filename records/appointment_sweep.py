"""The appointment sweep: bookings not checked in become no-shows, and reminders go out.

One process sweeps at a time (a lock in the live store); each change is a conditional update
as well, so a sweep that outlives its lock still changes nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Protocol

from records.columns import utc
from records.facade import Records
from records.reminder_webhook import ReminderWebhook
from records.scheduling import Scheduling
from rooms.audit import SYSTEM, AuditAction
from rooms.models import AuditEvent
from rooms.tasks import cancel_and_wait, every

logger = logging.getLogger(__name__)

LOCK_NAME = "appointments:sweep"
REMINDER_BATCH = 100


class SweepLock(Protocol):
    """The live store's expiring locks."""

    async def try_lock(self, name: str, owner: str, ttl_s: float) -> bool: ...

    async def release_lock(self, name: str, owner: str) -> None: ...


class AppointmentSweeper:
    """Every ``interval_s``: no-shows, then reminders due within ``reminder_lead_s``."""

    def __init__(
        self,
        records: Records,
        scheduling: Scheduling,
        lock: SweepLock,
        webhook: ReminderWebhook | None,
        interval_s: float,
        reminder_lead_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._records = records
        self._scheduling = scheduling
        self._lock = lock
        self._webhook = webhook
        self._interval_s = interval_s
        self._reminder_lead_s = reminder_lead_s
        self._clock = clock
        self._owner = uuid.uuid4().hex
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(
                every(self._interval_s, self.sweep, "appointment sweep"), name="appointment-sweep"
            )

    async def close(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def sweep(self) -> tuple[int, int]:
        """One sweep if this process holds the lock: (no-shows marked, reminders delivered)."""
        ttl = max(self._interval_s * 3, 120.0)
        if not await self._lock.try_lock(LOCK_NAME, self._owner, ttl):
            return 0, 0
        try:
            no_shows = await self._scheduling.sweep_no_shows()
            reminded = await self._remind() if self._webhook is not None else 0
            return no_shows, reminded
        finally:
            await self._lock.release_lock(LOCK_NAME, self._owner)

    async def _remind(self) -> int:
        assert self._webhook is not None
        now = utc(self._clock())
        due = await self._records.appointments.to_remind(
            now, now + timedelta(seconds=self._reminder_lead_s), REMINDER_BATCH
        )
        delivered = 0
        for appointment in due:
            if not await self._records.appointments.mark_reminded(appointment.appointment_id, now):
                continue
            patient = await self._records.patients.get(appointment.patient_id)
            ok = await self._webhook.deliver(
                appointment, None if patient is None else patient.guardian_phone
            )
            delivered += ok
            await self._audit(
                appointment.patient_id,
                {"appointment_id": appointment.appointment_id, "delivered": ok},
            )
        return delivered

    async def _audit(self, patient_id: str, details: dict[str, object]) -> None:
        await self._records.audit.append_patient_event(
            AuditEvent(
                "",
                self._clock(),
                SYSTEM.subject,
                SYSTEM.role.value,
                AuditAction.APPOINTMENT_REMINDED.value,
                details,
                patient_id,
            )
        )
