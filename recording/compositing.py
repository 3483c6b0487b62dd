"""Making a recording's side-by-side composite after the call, one at a time, off the event loop.

The work runs in its own process (:func:`~recording.composite.run_composite`); progress goes to
the clinician who started the recording as ``recording.composite_progress``. While the server
shuts down no composite starts and running ones are stopped: the entry stays
:class:`~recording.model.CompositePending`, made at the next start.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from recording.composite import CompositeInput, job_payload, run_composite
from recording.files import describe_stored
from recording.keys import Keyring
from recording.model import (
    Composite,
    CompositeFailed,
    CompositeFile,
    CompositePending,
    RecordingMeta,
)
from recording.recovery import COMPOSITE_FILE_NAME
from rooms.notify import Notifier

logger = logging.getLogger(__name__)


class CompositeMaker:
    """Makes composites one at a time (each uses a whole core)."""

    def __init__(self, root: Path, keyring: Keyring, notifier: Notifier) -> None:
        self._root = root
        self._keyring = keyring
        self._notifier = notifier
        self._one_at_a_time = asyncio.Semaphore(1)
        self._jobs: set[asyncio.Task[dict[str, Any]]] = set()
        self._closing = False

    def close(self) -> None:
        """Start no more composites and stop the running one (idempotent)."""
        self._closing = True
        for job in list(self._jobs):
            job.cancel()

    async def make(self, meta: RecordingMeta) -> Composite:
        """The composite of ``meta``'s tracks, or what stands in for it (pending, failed)."""
        root = self._root
        output = root / meta.folder / COMPOSITE_FILE_NAME
        inputs = [
            CompositeInput(root / t.file, t.kind, t.participant_id, t.source, t.offset_s)
            for t in meta.tracks
        ]
        duration = max(t.offset_s + t.duration_s for t in meta.tracks)
        try:
            async with self._one_at_a_time:
                if self._closing:
                    return CompositePending()
                job = asyncio.create_task(
                    run_composite(
                        job_payload(inputs, output, self._keyring, duration),
                        lambda percent: self._progress(meta, percent),
                        f"recording={meta.recording_id}",
                    )
                )
                self._jobs.add(job)
                try:
                    summary = await job
                finally:
                    self._jobs.discard(job)
            stored = await asyncio.to_thread(describe_stored, output, self._keyring, root)
        except asyncio.CancelledError:
            output.unlink(missing_ok=True)
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the finalisation itself is cancelled
            logger.info("composite stopped by shutdown recording=%s", meta.recording_id)
            return CompositePending()
        except Exception as exc:
            logger.warning("composite failed recording=%s error=%r", meta.recording_id, exc)
            output.unlink(missing_ok=True)
            return CompositeFailed(error="composite failed")
        return CompositeFile(
            file=stored.name,
            size=stored.size,
            sha256=stored.sha256,
            key_id=stored.key_id,
            duration_s=summary["duration_s"],
        )

    async def _progress(self, meta: RecordingMeta, percent: float) -> None:
        await self._notifier.to_subject(
            meta.started_by,
            "recording.composite_progress",
            {
                "consultation_id": meta.consultation_id,
                "recording_id": meta.recording_id,
                "percent": round(percent, 1),
            },
        )
