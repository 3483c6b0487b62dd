"""The ``recording.*`` events and the recording lifecycle of consultations on this node.

``recording.start`` (the consultation's own clinician, with the guardian's consent on file) puts a
:class:`~media.recorder.ConsultationRecorder` tap on the consultation's media router; everyone in
the room gets ``recording.state``. ``recording.stop``, the consultation ending or the consent being
withdrawn stop it at once. Files are encrypted as they are written. Finalising (checksums that
authenticate every chunk, the index entry, then the composite job in its own process) runs in
the background, never on the media path.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from media.composite import CompositeInput, job_payload, run_composite
from media.recorder import ConsultationRecorder, RecordingResult, describe_track_file
from media.recording_files import (
    ENCRYPTED_SUFFIX,
    describe_stored,
    seal_unfinished,
)
from media.recording_keys import Keyring
from media.router import MediaRegistry, MediaRouter
from rooms.errors import Forbidden, InvalidState
from rooms.models import Consultation, iso
from rooms.notify import Actor, Notifier
from rooms.roles import Role
from rooms.service import ConsultationService
from rooms.store import Store
from signaling.dispatch import Ack, Caller, EventSpec, event
from signaling.recording_messages import RecordingRef

logger = logging.getLogger(__name__)

PARTICIPANT_ROLES = (Role.OUTLET, Role.SPECIALIST, Role.COUNSELLOR, Role.GUEST)
LOCK_TTL_S = 15.0  # a recording's owner refreshes its lock; a crashed owner's lock runs out
# The index's ``composite`` while it is still to be made (made at the next start if a shutdown
# came first).
COMPOSITE_PENDING: dict[str, Any] = {"pending": True}


def _lock_name(recording_id: str) -> str:
    return f"recording:{recording_id}"


@dataclass(frozen=True)
class RecordingConfig:
    """Where recordings go and how they are kept; built by the composition root."""

    root: Path
    keyring: Keyring
    composite: bool = True
    reattach_interval_s: float = 1.0
    max_queued_frames: int = 1024


@dataclass(frozen=True)
class SystemActor:
    """The server itself, for audit entries of automatic actions (consent withdrawn, call ended)."""

    subject: str = "system"
    role: Role = Role.ADMIN
    name: str = "system"
    services: frozenset[str] = frozenset()
    consultation_id: str | None = None


class _Admission:
    """Whose media a recording may take: everyone but guests who have not acknowledged it.

    Roles come from the stored consultation; a participant not known yet (joined after the
    start) is looked up in the background and not recorded until then.
    """

    _REFRESH_INTERVAL_S = 0.5

    def __init__(self, consultation: Consultation, store: Store, acknowledged: set[str]) -> None:
        self._consultation_id = consultation.id
        self._store = store
        self._roles = {pid: p.role for pid, p in consultation.participants.items()}
        self._acknowledged = acknowledged
        self._refresh: asyncio.Task[None] | None = None
        self._refreshed_at = 0.0

    def admits(self, participant_id: str) -> bool:
        role = self._roles.get(participant_id)
        if role is None:
            self._refresh_soon()
            return False
        return role is not Role.GUEST or participant_id in self._acknowledged

    def _refresh_soon(self) -> None:
        loop = asyncio.get_running_loop()
        if self._refresh is not None and not self._refresh.done():
            return
        if loop.time() - self._refreshed_at < self._REFRESH_INTERVAL_S:
            return
        self._refreshed_at = loop.time()
        self._refresh = loop.create_task(
            self._load(), name=f"recording-roles-{self._consultation_id}"
        )

    async def _load(self) -> None:
        consultation = await self._store.get_consultation(self._consultation_id)
        if consultation is not None:
            self._roles = {pid: p.role for pid, p in consultation.participants.items()}

    async def close(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
            await asyncio.gather(self._refresh, return_exceptions=True)


@dataclass
class _Active:
    recorder: ConsultationRecorder
    meta: dict[str, Any]
    admission: _Admission
    router: MediaRouter | None = None
    watcher: asyncio.Task[None] | None = field(default=None, repr=False)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:100]


class Recordings:
    """Starts, stops and finalises the recordings of consultations whose media is on this node."""

    def __init__(
        self,
        service: ConsultationService,
        store: Store,
        media: Callable[[], MediaRegistry | None],
        notifier: Notifier,
        config: RecordingConfig,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._service = service
        self._store = store
        self._media = media
        self._notifier = notifier
        self._config = config
        self._clock = clock
        self._active: dict[str, _Active] = {}
        self._acknowledged: dict[str, set[str]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._finalizing: set[asyncio.Task[Any]] = set()
        self._composites = asyncio.Semaphore(1)  # one composite at a time: it uses a whole core
        self._composite_jobs: set[asyncio.Task[dict[str, Any]]] = set()
        self._recovery: asyncio.Task[None] | None = None
        self._resuming: set[str] = set()
        self._locked_elsewhere = False
        self._node = uuid.uuid4().hex
        self._closed = False

    def specs(self) -> list[EventSpec[Any]]:
        clinicians = (Role.SPECIALIST, Role.COUNSELLOR)
        return [
            event("recording.start", RecordingRef, clinicians, self._on_start),
            event("recording.stop", RecordingRef, clinicians, self._on_stop),
            event("recording.state", RecordingRef, PARTICIPANT_ROLES, self._on_state),
            event("recording.acknowledge", RecordingRef, PARTICIPANT_ROLES, self._on_acknowledge),
        ]

    # ----- events ------------------------------------------------------------------------------

    async def _on_start(self, caller: Caller, msg: RecordingRef) -> Ack:
        return {"ok": await self.start(caller.identity, msg.consultation_id)}

    async def _on_stop(self, caller: Caller, msg: RecordingRef) -> Ack:
        consultation = await self._service.get(caller.identity, msg.consultation_id)
        _require_own_clinician(caller.identity, consultation)
        await self.stop(msg.consultation_id, caller.identity, "stopped")
        return {"ok": self.state(msg.consultation_id)}

    async def _on_state(self, caller: Caller, msg: RecordingRef) -> Ack:
        await self._service.get(caller.identity, msg.consultation_id)
        return {"ok": self.state(msg.consultation_id)}

    async def _on_acknowledge(self, caller: Caller, msg: RecordingRef) -> Ack:
        consultation = await self._service.get(caller.identity, msg.consultation_id)
        self._acknowledged.setdefault(consultation.id, set()).add(caller.identity.subject)
        active = self._active.get(consultation.id)
        if active is not None and active.router is not None:
            active.router.request_keyframes()  # their video starts with a keyframe
        await self._service.audit(
            consultation.id,
            caller.identity,
            "recording_acknowledged",
            {"recording": consultation.recording},
        )
        return {"ok": self.state(msg.consultation_id)}

    # ----- lifecycle ---------------------------------------------------------------------------

    def state(self, consultation_id: str) -> dict[str, Any]:
        """The ``recording.state`` payload."""
        active = self._active.get(consultation_id)
        return {
            "consultation_id": consultation_id,
            "active": active is not None,
            "started_at": iso(active.meta["started_at"]) if active else None,
            "recording_id": active.meta["recording_id"] if active else None,
        }

    async def start(
        self, actor: Actor, consultation_id: str, continues: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Start recording (idempotent) if ``actor`` is its clinician and consent is on file.

        ``continues``: the index entry of a recording whose node was lost or drained; the new one
        is its next segment (started by the system, see :meth:`continue_moved`).
        """
        async with self._lock(consultation_id):
            if continues is None:
                await self._service.require_participant(consultation_id, actor)
            consultation = await self._service.get(actor, consultation_id)
            if continues is None:
                _require_own_clinician(actor, consultation)
            if consultation_id in self._active:
                return self.state(consultation_id)
            if self._closed:
                raise InvalidState("the server is shutting down")
            consent = consultation.consent
            if consent is None:
                raise InvalidState("the guardian's consent to record is not on file")
            registry = self._media()
            if registry is None:
                raise InvalidState("media is not available on this server")
            recording_id = uuid.uuid4().hex
            folder = Path(_safe(consultation_id)) / recording_id
            now = self._clock()
            meta: dict[str, Any] = {
                "recording_id": recording_id,
                "consultation_id": consultation_id,
                "folder": str(folder),
                "status": "recording",
                "started_at": now,
                "started_by": actor.subject,
                "key_id": self._config.keyring.current_id,
                "consent": consent.to_dict(),
                "legal_hold": False,
                "tracks": [],
                "composite": None,
            }
            details = {
                "recording_id": recording_id,
                "purpose": consent.purpose,
                "consent_by": consent.given_by,
            }
            if continues is not None:
                meta.update(_next_segment(continues))
                details["continues"] = meta["continues"]
            await self._store.try_lock(_lock_name(recording_id), self._node, LOCK_TTL_S)
            await self._store.save_recording(meta)
            await self._service.audit(
                consultation_id,
                actor,
                "recording_continued" if continues is not None else "recording_started",
                details,
            )
            router = registry.router(consultation_id)
            admission = _Admission(
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

    async def stop(self, consultation_id: str, actor: Actor | None, reason: str) -> None:
        """Stop at once (idempotent): detach the tap now, finalise in the background."""
        async with self._lock(consultation_id):
            active = self._active.pop(consultation_id, None)
            if active is None:
                return
            if active.router is not None:
                active.router.remove_tap(active.recorder)
            if active.watcher is not None:
                active.watcher.cancel()
                await asyncio.gather(active.watcher, return_exceptions=True)
            await active.admission.close()
            result = await active.recorder.stop()
            who = actor or SystemActor()
            await self._service.audit(
                consultation_id,
                who,
                "recording_stopped",
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
        task = asyncio.create_task(
            self._finalize(active.meta, result),
            name=f"recording-finalize-{result.recording_id[:8]}",
        )
        self._finalizing.add(task)
        task.add_done_callback(self._finalizing.discard)

    async def wait_finalized(self) -> None:
        """Wait for background finalisation (tests, shutdown)."""
        while self._finalizing:
            await asyncio.gather(*list(self._finalizing), return_exceptions=True)

    async def close(self) -> None:
        """Stop every recording and finalise it, fast (idempotent): composites are not made
        while shutting down, and running ones are stopped (the recording stays without one)."""
        self._closed = True
        logger.info("recordings closing active=%d", len(self._active))
        if self._recovery is not None:  # an interrupted recovery is finished at the next start
            self._recovery.cancel()
            await asyncio.gather(self._recovery, return_exceptions=True)
        await asyncio.gather(
            *(self.stop(cid, None, "server_shutdown") for cid in list(self._active))
        )
        for job in list(self._composite_jobs):
            job.cancel()
        await self.wait_finalized()

    # ----- segment continuation (the consultation's media moved to this node) ------------------

    async def continue_moved(self, consultation_id: str) -> dict[str, Any] | None:
        """A recording that was running on the node this consultation's media moved from goes on
        here as a new segment; the interrupted segment is recovered (left playable) once its
        lock runs out. Both stay in the consultation's recording index."""
        consultation = await self._store.get_consultation(consultation_id)
        running = [
            meta
            for meta in await self._store.recordings_for(consultation_id)
            if meta.get("status") == "recording"
            and not any(
                a.meta["recording_id"] == meta["recording_id"] for a in self._active.values()
            )
        ]
        if consultation is None or not consultation.recording or not running:
            return None
        previous = max(running, key=lambda meta: float(meta["started_at"]))
        state = await self.start(SystemActor(), consultation_id, continues=previous)
        if self._recovery is None or self._recovery.done():
            self._recovery = asyncio.create_task(
                self._recover_after_lock(), name="recording-recovery"
            )
        return state

    async def _recover_after_lock(self) -> None:
        await asyncio.sleep(LOCK_TTL_S + 1.0)
        try:
            await self.recover()
        except Exception:
            logger.exception("recording recovery failed")

    # consultation listener hooks

    async def on_participant_left(self, consultation_id: str, participant_id: str) -> None:
        return None  # the router ends that participant's tracks; the recording goes on

    async def on_consultation_ended(self, consultation_id: str) -> None:
        await self.stop(consultation_id, None, "consultation_ended")
        self._acknowledged.pop(consultation_id, None)
        self._locks.pop(consultation_id, None)

    async def on_consent_withdrawn(self, consultation_id: str) -> None:
        await self.stop(consultation_id, None, "consent_withdrawn")

    # ----- internals ---------------------------------------------------------------------------

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
            registry = self._media()
            router = registry.get(consultation_id) if registry is not None else None
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

    async def _finalize(
        self, meta: dict[str, Any], result: RecordingResult, composite: bool = True
    ) -> None:
        recording_id = result.recording_id
        root = self._config.root
        try:
            tracks = []
            for track in result.tracks:
                stored = await asyncio.to_thread(
                    describe_stored, Path(track["path"]), self._config.keyring, root
                )
                entry = {k: v for k, v in track.items() if k != "path"}
                tracks.append({**entry, **stored.to_dict()})
            meta.update(
                tracks=tracks,
                stopped_at=result.stopped_at,
                duration_s=round(result.stopped_at - result.started_at, 3),
                dropped_frames=result.dropped_frames,
                queue_drops=result.queue_drops,
                status="ready",
            )
            wanted = composite and self._config.composite and bool(tracks)
            if wanted:
                meta["composite"] = dict(COMPOSITE_PENDING)
            await self._store.save_recording(meta)
            if wanted and not self._closed:
                await self._make_composite(meta)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("recording finalize failed recording=%s", recording_id)
            meta.update(status="ready", error=repr(exc)[:300])
            await self._store.save_recording(meta)
        await self._store.release_lock(_lock_name(recording_id), self._node)
        logger.info(
            "recording ready recording=%s consultation=%s tracks=%d",
            recording_id,
            result.consultation_id,
            len(meta["tracks"]),
        )

    async def _make_composite(self, meta: dict[str, Any]) -> None:
        meta["status"] = "compositing"
        await self._store.save_recording(meta)
        meta["composite"] = await self._composite(meta)
        meta["status"] = "ready"
        await self._store.save_recording(meta)

    async def _resume_composite(self, meta: dict[str, Any]) -> None:
        """Make the composite a shutdown left pending (this node holds the recording's lock)."""
        recording_id = str(meta["recording_id"])
        try:
            await self._make_composite(meta)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("composite resumption failed recording=%s", recording_id)
        finally:
            self._resuming.discard(recording_id)
            await self._store.release_lock(_lock_name(recording_id), self._node)

    def start_recovery(self) -> None:
        """Recover in the background at startup, and once more when the locks of a process
        that died just before this start (a quick restart) have run out."""
        self._recovery = asyncio.create_task(self._recover_at_start(), name="recording-recovery")

    async def _recover_at_start(self) -> None:
        try:
            await self.recover()
            if self._locked_elsewhere:
                await asyncio.sleep(LOCK_TTL_S + 1.0)
                await self.recover()
        except Exception:  # the store may be unreachable: the next start tries again
            logger.exception("recording recovery failed")

    async def recover(self) -> list[str]:
        """Finalise recordings whose process died mid-way (their files play up to the crash), and
        start the composites a shutdown left pending (in the background).

        Only those whose lock has run out and whose folder is on this node's disk; recovered ones
        get ``interrupted: true`` and no composite (the tracks' relative timing died with the
        process). Returns the ids of the recovered recordings.
        """
        recovered = []
        self._locked_elsewhere = False
        for meta in await self._store.all_recordings():
            recording_id = str(meta["recording_id"])
            pending = meta.get("status") == "ready" and meta.get("composite") == COMPOSITE_PENDING
            if (
                (meta.get("status") != "recording" and not pending)
                or recording_id in self._resuming
                or any(a.meta["recording_id"] == recording_id for a in self._active.values())
            ):
                continue
            folder = self._config.root / str(meta["folder"])
            if not folder.is_dir():
                continue
            if not await self._store.try_lock(_lock_name(recording_id), self._node, LOCK_TTL_S):
                self._locked_elsewhere = True  # its owner is alive, or died less than a TTL ago
                continue
            if pending:
                self._resuming.add(recording_id)
                task = asyncio.create_task(
                    self._resume_composite(meta), name=f"recording-composite-{recording_id[:8]}"
                )
                self._finalizing.add(task)
                task.add_done_callback(self._finalizing.discard)
                continue
            found = [
                await asyncio.to_thread(self._recover_file, path)
                for path in sorted(folder.iterdir())
                if path.name.endswith((".webm" + ENCRYPTED_SUFFIX, ".mkv" + ENCRYPTED_SUFFIX))
                and path.name != "composite.webm" + ENCRYPTED_SUFFIX
            ]
            tracks = [t for t in found if t is not None]
            stopped_at = meta["started_at"] + max((t["duration_s"] for t in tracks), default=0.0)
            result = RecordingResult(
                recording_id, str(meta["consultation_id"]), meta["started_at"], stopped_at, tracks
            )
            meta["interrupted"] = True
            await self._service.audit(
                result.consultation_id,
                SystemActor(),
                "recording_recovered",
                {"recording_id": recording_id, "tracks": len(tracks)},
            )
            logger.warning(
                "recording interrupted by a crash, recovering recording=%s consultation=%s",
                recording_id,
                result.consultation_id,
            )
            await self._finalize(meta, result, composite=False)
            recovered.append(recording_id)
        return recovered

    def _recover_file(self, path: Path) -> dict[str, Any] | None:
        """Seal the end a killed writer left and describe what it holds (blocking)."""
        try:
            seal_unfinished(path, self._config.keyring)
        except Exception as exc:  # the file is damaged beyond its tail: leave it out
            logger.warning("recording file unrecoverable file=%s error=%r", path.name, exc)
            return None
        return describe_track_file(path, self._config.keyring)

    async def _composite(self, meta: dict[str, Any]) -> dict[str, Any] | None:
        root = self._config.root
        consultation_id = meta["consultation_id"]
        recording_id = meta["recording_id"]
        inputs = [
            CompositeInput(
                root / t["file"], t["kind"], t["participant_id"], t["source"], float(t["offset_s"])
            )
            for t in meta["tracks"]
        ]
        duration = max(float(t["offset_s"]) + float(t["duration_s"]) for t in meta["tracks"])
        output = root / meta["folder"] / ("composite.webm" + ENCRYPTED_SUFFIX)
        started_by = meta["started_by"]

        async def progress(percent: float) -> None:
            await self._notifier.to_subject(
                started_by,
                "recording.composite_progress",
                {
                    "consultation_id": consultation_id,
                    "recording_id": recording_id,
                    "percent": round(percent, 1),
                },
            )

        try:
            async with self._composites:
                if self._closed:
                    return dict(COMPOSITE_PENDING)
                job = asyncio.create_task(
                    run_composite(
                        job_payload(inputs, output, self._config.keyring, duration),
                        progress,
                        f"recording={recording_id}",
                    )
                )
                self._composite_jobs.add(job)
                try:
                    summary = await job
                finally:
                    self._composite_jobs.discard(job)
            stored = await asyncio.to_thread(describe_stored, output, self._config.keyring, root)
        except asyncio.CancelledError:
            output.unlink(missing_ok=True)
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # this finalisation itself is cancelled
            logger.info("composite stopped by shutdown recording=%s", recording_id)
            return dict(COMPOSITE_PENDING)
        except Exception as exc:
            logger.warning("composite failed recording=%s error=%r", recording_id, exc)
            output.unlink(missing_ok=True)
            return {"error": "composite failed"}
        return {**stored.to_dict(), "track_name": "composite", "duration_s": summary["duration_s"]}


def _next_segment(previous: dict[str, Any]) -> dict[str, Any]:
    """Index fields of the segment that continues ``previous``."""
    return {
        "continues": previous["recording_id"],
        "segment": int(previous.get("segment", 1)) + 1,
        "started_by": previous["started_by"],
    }


def _require_own_clinician(actor: Actor, consultation: Consultation) -> None:
    if not actor.role.is_clinician or consultation.clinician_id != actor.subject:
        raise Forbidden("only this consultation's clinician may control its recording")
