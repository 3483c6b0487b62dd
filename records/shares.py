"""The family's copy of a report: a share code, a sealed PIN, and the wrong-PIN lockout."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from records.codes import new_code
from records.database import RecordsDatabase
from records.models import Share
from records.sealing import Sealer
from records.tables import ShareRow

SHARE_CODE_LENGTH = 9
PIN_DIGITS = 6
_TABLE = "report_shares"


class PinCheck(StrEnum):
    """The outcome of a PIN tried against a share code."""

    OPEN = "open"
    WRONG = "wrong"
    LOCKED = "locked"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ShareRules:
    """How long a code lives and how wrong PINs lock it."""

    valid_for: timedelta
    max_wrong_pins: int
    lock_for: timedelta


class ReportShares:
    """The ``report_shares`` table."""

    def __init__(self, database: RecordsDatabase, sealer: Sealer, rules: ShareRules) -> None:
        self._db = database
        self._sealer = sealer
        self._rules = rules

    async def ensure(self, session: AsyncSession, consultation_id: str, at: datetime) -> Share:
        """Within ``session``: the consultation's share, made on first use (one code for every
        version of its report)."""
        await self._db.serialise(session, "share:" + consultation_id)
        row = await session.scalar(
            select(ShareRow).where(ShareRow.consultation_id == consultation_id)
        )
        if row is None:
            code = new_code(SHARE_CODE_LENGTH - 1).replace("-", "")
            pin = "".join(secrets.choice("0123456789") for _ in range(PIN_DIGITS))
            row = ShareRow(
                share_code=code,
                consultation_id=consultation_id,
                pin_sealed=self._sealer.seal(pin, _TABLE, code, "pin"),
                created_at=at,
                expires_at=at + self._rules.valid_for,
                failed_attempts=0,
            )
            session.add(row)
        return self._share_of(row)

    async def existing(self, consultation_id: str) -> Share | None:
        async def query(session: AsyncSession) -> Share | None:
            row = await session.scalar(
                select(ShareRow).where(ShareRow.consultation_id == consultation_id)
            )
            return None if row is None else self._share_of(row)

        return await self._db.read(query)

    async def check_pin(
        self, share_code: str, pin: str, at: datetime
    ) -> tuple[PinCheck, str | None]:
        """Try a PIN: the outcome and the code's consultation (``None``: unknown code). Every
        wrong PIN counts; the ``max_wrong_pins``-th locks the code for ``lock_for`` (during which
        the right PIN is refused too)."""
        async with self._db.transaction() as session:
            row = await session.get(ShareRow, share_code, with_for_update=True)
            if row is None:
                return PinCheck.UNKNOWN, None
            consultation_id = row.consultation_id
            if row.expires_at <= at:
                return PinCheck.EXPIRED, consultation_id
            if row.locked_until is not None and row.locked_until > at:
                return PinCheck.LOCKED, consultation_id
            expected = self._sealer.open(row.pin_sealed, _TABLE, share_code, "pin")
            if hmac.compare_digest(expected.encode(), pin.encode()):
                row.failed_attempts = 0
                row.locked_until = None
                return PinCheck.OPEN, consultation_id
            row.failed_attempts += 1
            if row.failed_attempts >= self._rules.max_wrong_pins:
                row.failed_attempts = 0
                row.locked_until = at + self._rules.lock_for
                return PinCheck.LOCKED, consultation_id
            return PinCheck.WRONG, consultation_id

    def _share_of(self, row: ShareRow) -> Share:
        pin = self._sealer.open(row.pin_sealed, _TABLE, row.share_code, "pin")
        return Share(row.share_code, row.consultation_id, pin, row.expires_at)
