"""The recording lifecycle of consultations whose media is on this node.

:meth:`Recordings.start` (the consultation's own clinician, with the guardian's consent on file)
puts a :class:`~recording.tap.ConsultationRecorder` tap on the consultation's media router;
everyone in the room gets ``recording.state``. A stop, the consultation ending or the consent
being withdrawn stop it at once. Finalising (checksums that authenticate every chunk, the index
entry, then the composite in its own process) runs in the background, never on the media path.
A lock in the store, refreshed while recording, tells a live recording from one whose process
died: :meth:`Recordings.recover` finalises the latter at the next start.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from media.router import MediaRegistry, MediaRouter
from recording.admission import Admission
from recording.compositing import CompositeMaker
from recording.files import describe_stored, safe_file_name
from recording.index import RecordingCatalog
from recording.keys import Keyring
from recording.model import (
    CompositePending,
    RecordedTrack,
    RecordingMeta,
    RecordingStatus,
    TrackFile,
)
from recording.recovery import recover_folder
from recording.tap import ConsultationRecorder, RecordingResult
from rooms import access
from rooms.access import Access
from rooms.audit import SYSTEM, AuditAction
from rooms.errors import InvalidState, NotFound
from rooms.models import Consultation, Participant, iso
from rooms.notify import Actor, Notifier
from rooms.store import RecordingIndex, Store
from rooms.tasks import cancel_and_wait

logger = logging.getLogger(__name__)

LOCK_TTL_S = 15.0  # a recording's owner refreshes its lock; a crashed owner's lock runs out


def _lock_name(recording_id: str) -> str:
    return f"recording:{recording_id}"


class Consultations(Protocol):
    """What recording needs from the consultation service."""

    async def get(self, actor: Actor, consultation_id: str) -> Consultation: ...

    async def require_participant(self, consultation_id: str, identity: Actor) -> Participant: ...

    async def set_recording(self, consultation_id: str, recording: bool) -> Consultation: ...

    async def audit(
        self, consultation_id: str, actor: Actor, action: AuditAction, details: dict[str, Any]
    ) -> None: ...


@dataclass(frozen=True)
class RecordingConfig:
    """Where recordings go and how they are kept; built by the composition root."""

    root: Path
    keyring: Keyring
    composite: bool = True
    reattach_interval_s: float = 1.0
    max_queued_frames: int = 1024


@dataclass
class _Active:
    recorder: ConsultationRecorder
    meta: RecordingMeta
    admission: Admission
    router: MediaRouter | None = None
    watcher: asyncio.Task[None] | None = field(default=None, repr=False)


class Recordings:
    """Starts, stops and finalises the recordings of consultations whose media is on this node."""

    def __init__(
        self,
        service: Consultations,
        store: Store,
        index: RecordingIndex,
        media: MediaRegistry,
        notifier: Notifier,
        config: RecordingConfig,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._service = service
        self._store = store
        self._catalog = RecordingCatalog(index)
        self._media = media
        self._notifier = notifier
        self._config = config
        self._clock = clock
        self._composites = CompositeMaker(config.root, config.keyring, notifier)
        self._active: dict[str, _Active] = {}
        self._acknowledged: dict[str, set[str]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._finalizing: set[asyncio.Task[Any]] = set()
        self._recovery: asyncio.Task[None] | None = None
        self._resuming: set[str] = set()
        self._locked_elsewhere = False
        self._node = uuid.uuid4().hex
        self._closed = False

    # ----- requests ----------------------------------------------------------------------------

    def state(self, consultation_id: str) -> dict[str, Any]:
        """The ``recording.state`` payload."""
        active = self._active.get(consultation_id)
        return {
            "consultation_id": consultation_id,
            "active": active is not None,
            "started_at": iso(active.meta.started_at) if active else None,
            "recording_id": active.meta.recording_id if active else None,
        }

    async def state_for(self, actor: Actor, consultation_id: str) -> dict[str, Any]:
        """The recording state, for those taking part in the consultation and admins."""
        consultation = await self._service.get(actor, consultation_id)
        access.require(actor, Access.RECORDING_STATE, consultation)
        return self.state(consultation_id)

    async def acknowledge(self, actor: Actor, consultation_id: str) -> dict[str, Any]:
        """A participant saw the recording notice: a guest's media is recorded from now on."""
        consultation = await self._service.get(actor, consultation_id)
        access.require(actor, Access.RECORDING_ACKNOWLEDGE, consultation)
        self._acknowledged.setdefault(consultation.id, set()).add(actor.subject)
        active = self._active.get(consultation.id)
        if active is not None and active.router is not None:
            active.router.request_keyframes()  # their video starts with a keyframe
        await self._service.audit(
            consultation.id,
            actor,
            AuditAction.RECORDING_ACKNOWLEDGED,
            {"recording": consultation.recording},
        )
        return self.state(consultation_id)

    async def start(
        self, actor: Actor, consultation_id: str, continues: RecordingMeta | None = None
    ) -> dict[str, Any]:
        """Start recording (idempotent) if ``actor`` is its clinician and consent is on file.

        ``continues``: the entry of a recording whose node was lost or drained; the new one is
        its next segment, started by the server (see :meth:`continue_moved`).
        """
        async with self._lock(consultation_id):
            if continues is None:
                await self._service.require_participant(consultation_id, actor)
                consultation = await self._service.get(actor, consultation_id)
                access.require(actor, Access.RECORDING_START, consultation)
            else:  # the server itself, not a participant: read the consultation as it is stored
                stored = await self._store.get_consultation(consultation_id)
                if stored is None:
                    raise NotFound("no such consultation")
                consultation = stored
            if consultation_id in self._active:
                return self.state(consultation_id)
            if self._closed:
                raise InvalidState("the server is shutting down")
            consent = consultation.consent
            if consent is None:
                raise InvalidState("the guardian's consent to record is not on file")
            recording_id = uuid.uuid4().hex
            folder = Path(safe_file_name(consultation_id, 100)) / recording_id
            meta = RecordingMeta(
                recording_id=recording_id,
                consultation_id=consultation_id,
                folder=str(folder),
                status=RecordingStatus.RECORDING,
                started_at=self._clock(),
                started_by=actor.subject,
                key_id=self._config.keyring.current_id,
                consent=consent,
            )
            details = {
                "recording_id": recording_id,
                "purpose": consent.purpose,
                "consent_by": consent.given_by,
            }
            if continues is not None:
                meta.started_by = continues.started_by
                meta.continues = continues.recording_id
                meta.segment = continues.segment + 1
                details["continues"] = continues.recording_id
            await self._store.try_lock(_lock_name(recording_id), self._node, LOCK_TTL_S)
            await self._catalog.save(meta)
            await self._service.audit(
                consultation_id,
                actor,
                AuditAction.RECORDING_CONTINUED
                if continues is not None
                else AuditAction.RECORDING_STARTED,
                details,
            )
            router = self._media.router(consultation_id)
            admission = Admission(
                consultation, self._store, self._acknowledged.setdefault(consultation_id, set())
            )
            recorder = ConsultationRecorder(
                recording_id,
                consultation_id,
                self._config.root / folder,
                router.request_keyframes,
                self._config.keyring,
                max_queued_frames=self._config.max_queued_frames,
                admits=admission.admits,
            )
            active = _Active(recorder, meta, admission)
            self._attach(active, router)
            active.watcher = asyncio.create_task(
                self._keep_attached(consultation_id, active),
                name=f"recording-watch-{recording_id[:8]}",
            )
            self._active[consultation_id] = active
            await self._service.set_recording(consultation_id, True)
        await self._announce(consultation)
        logger.info(
            "recording started consultation=%s recording=%s by=%s",
            consultation_id,
            recording_id,
            actor.subject,
        )
        return self.state(consultation_id)

    async def stop_for(self, actor: Actor, consultation_id: str) -> dict[str, Any]:
        """The clinician's stop: refused to anyone else."""
        consultation = await self._service.get(actor, consultation_id)
        access.require(actor, Access.RECORDING_STOP, consultation)
        await self.stop(consultation_id, actor, "stopped")
        return self.state(consultation_id)

    async def stop(self, consultation_id: str, actor: Actor | None, reason: str) -> None:
        """Stop at once (idempotent): detach the tap now, finalise in the background."""
        async with self._lock(consultation_id):
            active = self._active.pop(consultation_id, None)
            if active is None:
                return
            if active.router is not None:
                active.router.remove_tap(active.recorder)
            await cancel_and_wait(active.watcher)
            await active.admission.close()
            result = await active.recorder.stop()
            await self._service.audit(
                consultation_id,
                actor or SYSTEM,
                AuditAction.RECORDING_STOPPED,
                {
                    "recording_id": result.recording_id,
                    "reason": reason,
                    "tracks": len(result.tracks),
                },
            )
            with_consultation = await self._service.set_recording(consultation_id, False)
        logger.info(
            "recording stopped consultation=%s recording=%s reason=%s",
            consultation_id,
            result.recording_id,
            reason,
        )
        await self._announce(with_consultation)
        self._in_background(
            self._finalize(active.meta, result), f"recording-finalize-{result.recording_id[:8]}"
        )

    async def wait_finalized(self) -> None:
        """Wait for background finalisation (tests, shutdown)."""
        while self._finalizing:
            await asyncio.gather(*list(self._finalizing), return_exceptions=True)

    async def close(self) -> None:
        """Stop every recording and finalise it, fast (idempotent): composites are not made
        while shutting down, and running ones are stopped (the recording stays without one)."""
        self._closed = True
        logger.info("recordings closing active=%d", len(self._active))
        # An interrupted recovery is finished at the next start.
        await cancel_and_wait(self._recovery)
        await asyncio.gather(
            *(self.stop(cid, None, "server_shutdown") for cid in list(self._active))
        )
        self._composites.close()
        await self.wait_finalized()

    # ----- segment continuation (the consultation's media moved to this node) ------------------

    async def continue_moved(self, consultation_id: str) -> dict[str, Any] | None:
        """A recording that was running on the node this consultation's media moved from goes on
        here as its next segment; the interrupted segment is recovered (left playable) once its
        lock runs out. Both stay in the consultation's recording index."""
        consultation = await self._store.get_consultation(consultation_id)
        running = [
            meta
            for meta in await self._catalog.for_consultation(consultation_id)
            if meta.status is RecordingStatus.RECORDING and not self._is_active(meta.recording_id)
        ]
        if consultation is None or not consultation.recording or not running:
            return None
        previous = max(running, key=lambda meta: meta.started_at)
        state = await self.start(SYSTEM, consultation_id, continues=previous)
        if self._recovery is None or self._recovery.done():
            self._recovery = asyncio.create_task(
                self._recovery_rounds(at_once=False), name="recording-recovery"
            )
        return state

    # ----- consultation listener hooks ---------------------------------------------------------

    async def on_participant_left(self, consultation_id: str, participant_id: str) -> None:
        return None  # the router ends that participant's tracks; the recording goes on

    async def on_consultation_ended(self, consultation_id: str) -> None:
        await self.stop(consultation_id, None, "consultation_ended")
        self._acknowledged.pop(consultation_id, None)
        self._locks.pop(consultation_id, None)

    async def on_consent_withdrawn(self, consultation_id: str) -> None:
        await self.stop(consultation_id, None, "consent_withdrawn")

    # ----- media -------------------------------------------------------------------------------

    def _lock(self, consultation_id: str) -> asyncio.Lock:
        return self._locks.setdefault(consultation_id, asyncio.Lock())

    def _attach(self, active: _Active, router: MediaRouter) -> None:
        if active.router is not None and active.router is not router:
            active.router.remove_tap(active.recorder)
        active.router = router
        router.add_tap(active.recorder)
        router.request_keyframes()

    async def _keep_attached(self, consultation_id: str, active: _Active) -> None:
        """Follow a router that closed when the room emptied and reopened on rejoin; keep the
        recording's lock alive (so no other process takes it for a crashed one)."""
        lock = _lock_name(active.recorder.recording_id)
        while True:
            await asyncio.sleep(self._config.reattach_interval_s)
            try:
                await self._store.try_lock(lock, self._node, LOCK_TTL_S)
            except Exception as exc:  # the store is briefly unreachable: keep recording
                logger.warning(
                    "recording lock refresh failed recording=%s error=%r",
                    active.recorder.recording_id,
                    exc,
                )
            router = self._media.get(consultation_id)
            if router is not None and router is not active.router:
                logger.info(
                    "recording follows new router consultation=%s recording=%s",
                    consultation_id,
                    active.recorder.recording_id,
                )
                self._attach(active, router)

    async def _announce(self, consultation: Consultation) -> None:
        payload = self.state(consultation.id)
        for participant_id in sorted(consultation.participants):
            await self._notifier.to_subject(participant_id, "recording.state", payload)

    # ----- finalising --------------------------------------------------------------------------

    def _in_background(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._finalizing.add(task)
        task.add_done_callback(self._finalizing.discard)

    async def _stored_track(self, track: RecordedTrack) -> TrackFile:
        config = self._config
        stored = await asyncio.to_thread(describe_stored, track.path, config.keyring, config.root)
        return TrackFile.of(track, stored)

    async def _finalize(
        self, meta: RecordingMeta, result: RecordingResult, composite: bool = True
    ) -> None:
        recording_id = result.recording_id
        try:
            meta.tracks = [await self._stored_track(track) for track in result.tracks]
            meta.stopped_at = result.stopped_at
            meta.duration_s = round(result.stopped_at - result.started_at, 3)
            meta.dropped_frames = result.dropped_frames
            meta.queue_drops = result.queue_drops
            meta.status = RecordingStatus.READY
            wanted = composite and self._config.composite and bool(meta.tracks)
            if wanted:
                meta.composite = CompositePending()
            await self._catalog.save(meta)
            if wanted and not self._closed:
                await self._make_composite(meta)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("recording finalize failed recording=%s", recording_id)
            meta.status = RecordingStatus.READY
            meta.error = repr(exc)[:300]
            await self._catalog.save(meta)
        await self._store.release_lock(_lock_name(recording_id), self._node)
        logger.info(
            "recording ready recording=%s consultation=%s tracks=%d",
            recording_id,
            result.consultation_id,
            len(meta.tracks),
        )

    async def _make_composite(self, meta: RecordingMeta) -> None:
        meta.status = RecordingStatus.COMPOSITING
        await self._catalog.save(meta)
        meta.composite = await self._composites.make(meta)
        meta.status = RecordingStatus.READY
        await self._catalog.save(meta)

    async def _resume_composite(self, meta: RecordingMeta) -> None:
        """Make the composite a shutdown left pending (this node holds the recording's lock)."""
        recording_id = meta.recording_id
        try:
            await self._make_composite(meta)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("composite resumption failed recording=%s", recording_id)
        finally:
            self._resuming.discard(recording_id)
            await self._store.release_lock(_lock_name(recording_id), self._node)

    # ----- crash recovery ----------------------------------------------------------------------

    def start_recovery(self) -> None:
        """Recover in the background at startup, and once more when the locks of a process
        that died just before this start (a quick restart) have run out."""
        self._recovery = asyncio.create_task(
            self._recovery_rounds(at_once=True), name="recording-recovery"
        )

    async def _recovery_rounds(self, at_once: bool) -> None:
        """Recover now (``at_once``; done if no other process held a lock), then once the locks
        of a process that died just before have run out."""
        try:
            if at_once:
                await self.recover()
                if not self._locked_elsewhere:
                    return
            await asyncio.sleep(LOCK_TTL_S + 1.0)
            await self.recover()
        except Exception:  # the store may be unreachable: the next start tries again
            logger.exception("recording recovery failed")

    def _is_active(self, recording_id: str) -> bool:
        return any(a.meta.recording_id == recording_id for a in self._active.values())

    async def recover(self) -> list[str]:
        """Finalise recordings whose process died mid-way (their files play up to the crash), and
        start the composites a shutdown left pending (in the background).

        Only those whose lock has run out and whose folder is on this node's disk; recovered ones
        get ``interrupted: true`` and no composite (the tracks' relative timing died with the
        process). Returns the ids of the recovered recordings.
        """
        recovered = []
        self._locked_elsewhere = False
        for meta in await self._catalog.all():
            recording_id = meta.recording_id
            pending = meta.composite_pending
            if (
                (meta.status is not RecordingStatus.RECORDING and not pending)
                or recording_id in self._resuming
                or self._is_active(recording_id)
            ):
                continue
            folder = self._config.root / meta.folder
            if not folder.is_dir():
                continue
            if not await self._store.try_lock(_lock_name(recording_id), self._node, LOCK_TTL_S):
                self._locked_elsewhere = True  # its owner is alive, or died less than a TTL ago
                continue
            if pending:
                self._resuming.add(recording_id)
                self._in_background(
                    self._resume_composite(meta), f"recording-composite-{recording_id[:8]}"
                )
                continue
            await self._recover(meta, folder)
            recovered.append(recording_id)
        return recovered

    async def _recover(self, meta: RecordingMeta, folder: Path) -> None:
        tracks = await asyncio.to_thread(recover_folder, folder, self._config.keyring)
        stopped_at = meta.started_at + max((t.duration_s for t in tracks), default=0.0)
        result = RecordingResult(
            meta.recording_id, meta.consultation_id, meta.started_at, stopped_at, tracks
        )
        meta.interrupted = True
        await self._service.audit(
            meta.consultation_id,
            SYSTEM,
            AuditAction.RECORDING_RECOVERED,
            {"recording_id": meta.recording_id, "tracks": len(tracks)},
        )
        logger.warning(
            "recording interrupted by a crash, recovering recording=%s consultation=%s",
            meta.recording_id,
            meta.consultation_id,
        )
        await self._finalize(meta, result, composite=False)
