"""Appointment reminders handed to the operator's webhook (which sends the SMS or WeChat
message): an HMAC-signed JSON POST, tried again with back-off, every attempt kept.

Signature: ``X-Teleconsult-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`` under
``reminder_webhook_secret``, with ``X-Teleconsult-Timestamp`` (Unix seconds) so a receiver can
refuse replays; ``Idempotency-Key`` is the appointment id.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from records.appointments import Appointment
from records.columns import utc
from records.database import RecordsDatabase
from records.models import iso
from records.tables import ReminderAttemptRow

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Teleconsult-Signature"
TIMESTAMP_HEADER = "X-Teleconsult-Timestamp"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value for a body sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    secret: str
    tries: int = 5
    first_backoff_s: float = 2.0
    timeout_s: float = 10.0


class ReminderWebhook:
    """Posts one reminder, trying up to ``tries`` times with doubling pauses."""

    def __init__(
        self,
        database: RecordsDatabase,
        config: WebhookConfig,
        zone: ZoneInfo,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = database
        self._config = config
        self._zone = zone
        self._clock = clock

    def payload(self, appointment: Appointment, guardian_phone: str | None) -> dict[str, Any]:
        """What the operator needs to send the message: when (UTC and local), where, to whom
        (the guardian's phone: the only personal field, sent because delivery needs it)."""
        return {
            "event": "appointment.reminder",
            "appointment": appointment.to_wire(),
            "local_start": appointment.start.astimezone(self._zone).isoformat(),
            "timezone": self._zone.key,
            "guardian_phone": guardian_phone,
            "sent_at": iso(utc(self._clock())),
        }

    async def deliver(self, appointment: Appointment, guardian_phone: str | None) -> bool:
        """``True`` once the webhook answered 2xx; ``False`` after the last failed try."""
        body = json.dumps(self.payload(appointment, guardian_phone), separators=(",", ":"))
        data = body.encode()
        pause = self._config.first_backoff_s
        timeout = aiohttp.ClientTimeout(total=self._config.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for attempt in range(1, self._config.tries + 1):
                status, error = await self._post(session, appointment.appointment_id, data)
                await self._record(appointment.appointment_id, attempt, status, error)
                ok = status is not None and 200 <= status < 300
                logger.info(
                    "reminder appointment=%s attempt=%d status=%s error=%s",
                    appointment.appointment_id,
                    attempt,
                    status,
                    error,
                )
                if ok:
                    return True
                if attempt < self._config.tries:
                    await asyncio.sleep(pause)
                    pause *= 2
        return False

    async def _post(
        self, session: aiohttp.ClientSession, appointment_id: str, data: bytes
    ) -> tuple[int | None, str | None]:
        timestamp = str(int(self._clock()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(self._config.secret, timestamp, data),
            "Idempotency-Key": appointment_id,
        }
        try:
            # No redirects: the signed body (with a phone number) goes to the configured URL only.
            async with session.post(
                self._config.url, data=data, headers=headers, allow_redirects=False
            ) as response:
                return response.status, None
        except (aiohttp.ClientError, TimeoutError) as exc:
            return None, type(exc).__name__[:120]

    async def _record(
        self, appointment_id: str, attempt: int, status: int | None, error: str | None
    ) -> None:
        async with self._db.transaction() as session:
            session.add(
                ReminderAttemptRow(
                    appointment_id=appointment_id,
                    attempt=attempt,
                    at=utc(self._clock()),
                    status=status,
                    error=error,
                )
            )

    async def attempts(
        self, appointment_id: str
    ) -> list[tuple[int, datetime, int | None, str | None]]:
        """Every attempt for an appointment, in order: (attempt, at, HTTP status, error)."""
        statement = (
            select(ReminderAttemptRow)
            .where(ReminderAttemptRow.appointment_id == appointment_id)
            .order_by(ReminderAttemptRow.id)
        )

        async def query(
            session: AsyncSession,
        ) -> list[tuple[int, datetime, int | None, str | None]]:
            return [(r.attempt, r.at, r.status, r.error) for r in await session.scalars(statement)]

        return await self._db.read(query)
