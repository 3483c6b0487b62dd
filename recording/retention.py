"""Retention: a periodic task that deletes recordings older than the retention period.

A recording on legal hold, or one still being recorded or finalised, is never deleted. Every
deletion is audited on its consultation before the index entry goes.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from recording.index import RecordingCatalog
from recording.model import RecordingMeta, RecordingStatus
from rooms.audit import AuditAction
from rooms.store import RecordingIndex
from rooms.tasks import cancel_and_wait, every

logger = logging.getLogger(__name__)

AuditFn = Callable[[str, AuditAction, dict[str, Any]], Awaitable[None]]


class RetentionSweeper:
    """Deletes expired recordings every ``interval_s`` (or on :meth:`sweep`)."""

    def __init__(
        self,
        index: RecordingIndex,
        root: Path,
        retention_s: float,
        audit: AuditFn,
        interval_s: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._catalog = RecordingCatalog(index)
        self._root = root
        self._retention_s = retention_s
        self._audit = audit
        self._interval_s = interval_s
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(
                every(self._interval_s, self.sweep, "retention sweep"), name="recording-retention"
            )

    async def close(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    def expired(self, meta: RecordingMeta, now: float) -> bool:
        """Whether a recording is past retention and may go."""
        return (
            meta.status is RecordingStatus.READY
            and not meta.legal_hold
            and meta.stopped_at is not None
            and meta.stopped_at + self._retention_s <= now
        )

    async def sweep(self) -> list[str]:
        """Delete every expired recording now; returns their ids."""
        now = self._clock()
        deleted = []
        for meta in await self._catalog.all():
            stopped_at = meta.stopped_at
            if stopped_at is None or not self.expired(meta, now):
                continue
            recording_id = meta.recording_id
            await asyncio.to_thread(shutil.rmtree, self._root / meta.folder, True)
            await self._audit(
                meta.consultation_id,
                AuditAction.RECORDING_DELETED,
                {
                    "recording_id": recording_id,
                    "reason": "retention",
                    "age_days": round((now - stopped_at) / 86400, 2),
                },
            )
            await self._catalog.delete(recording_id)
            deleted.append(recording_id)
            logger.info(
                "recording deleted by retention recording=%s consultation=%s",
                recording_id,
                meta.consultation_id,
            )
        return deleted
