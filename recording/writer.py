"""The writer thread: one per recording, owning its muxers; the event loop only enqueues.

Encoded frames are muxed by PyAV (no decode, no encode) into
:class:`~recording.files.EncryptingWriter` files, so plaintext never reaches the disk. Matroska
clusters are closed every second and flushed, so a killed process leaves a file that decrypts to
a recording playable up to its last second. The queue is bounded: overflow drops and counts.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from recording.files import EncryptingWriter
from recording.keys import Keyring

logger = logging.getLogger(__name__)

MS = Fraction(1, 1000)
_BATCH_FRAMES = 64
_MUXER_OPTIONS = {
    "cluster_time_limit": "1000",
    "cluster_size_limit": str(2 * 1024 * 1024),
    "flush_packets": "1",
}


@dataclass(frozen=True)
class CodecSpec:
    """How one codec is stored: PyAV codec name, container format and file extension."""

    name: str
    container: str
    extension: str


CODECS: dict[str, CodecSpec] = {
    "video/vp8": CodecSpec("vp8", "webm", "webm"),
    "audio/opus": CodecSpec("opus", "webm", "webm"),
    "video/h264": CodecSpec("h264", "matroska", "mkv"),
}


@dataclass(frozen=True)
class _Open:
    track_key: str
    path: Path
    spec: CodecSpec
    size: tuple[int, int] | None


@dataclass(frozen=True)
class _Write:
    track_key: str
    pts_ms: int
    data: bytes
    keyframe: bool


@dataclass(frozen=True)
class _Close:
    track_key: str


class RecordingWriter:
    """One thread that owns a recording's muxers; the event loop only enqueues (bounded).

    Frames go over in batches (every ``batch_s`` or ``_BATCH_FRAMES`` frames), so the thread
    wakes a few times a second rather than for every frame (measured: per-frame wake-ups cost
    about as much CPU as the muxing itself).
    """

    def __init__(
        self,
        recording_id: str,
        keyring: Keyring,
        max_queued_frames: int,
        batch_s: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.recording_id = recording_id
        self._keyring = keyring
        self._queue: queue.SimpleQueue[list[_Open | _Write | _Close] | None] = queue.SimpleQueue()
        self._room = threading.BoundedSemaphore(max_queued_frames)
        self._batch: list[_Open | _Write | _Close] = []
        self._batch_started = 0.0
        self._batch_s = batch_s
        self._clock = clock
        self._containers: dict[str, tuple[Any, Any, EncryptingWriter]] = {}
        self._failed: set[str] = set()
        self.errors: dict[str, str] = {}
        self.cpu_s = 0.0
        self._thread = threading.Thread(
            target=self._run, name=f"recorder-{recording_id[:8]}", daemon=True
        )
        self._thread.start()

    def open(
        self, track_key: str, path: Path, spec: CodecSpec, size: tuple[int, int] | None
    ) -> None:
        self._batch.append(_Open(track_key, path, spec, size))
        self._flush()

    def write(self, track_key: str, pts_ms: int, data: bytes, keyframe: bool) -> bool:
        """Queue a frame; ``False`` (frame dropped) when the writer is too far behind."""
        if not self._room.acquire(blocking=False):
            return False
        now = self._clock()
        if not self._batch:
            self._batch_started = now
        self._batch.append(_Write(track_key, pts_ms, data, keyframe))
        if now - self._batch_started >= self._batch_s or len(self._batch) >= _BATCH_FRAMES:
            self._flush()
        return True

    def close_track(self, track_key: str) -> None:
        self._batch.append(_Close(track_key))
        self._flush()

    def stop(self) -> None:
        """Finish every file and end the thread (blocking: call it in a thread)."""
        self._flush()
        self._queue.put(None)
        self._thread.join()

    def _flush(self) -> None:
        if self._batch:
            self._queue.put(self._batch)
            self._batch = []

    def _run(self) -> None:
        while (batch := self._queue.get()) is not None:
            for command in batch:
                try:
                    self._handle(command)
                except Exception as exc:  # one broken file must not stop the others
                    key = command.track_key
                    self._failed.add(key)
                    self.errors[key] = repr(exc)
                    logger.exception(
                        "recording write failed recording=%s track=%s", self.recording_id, key
                    )
                finally:
                    if isinstance(command, _Write):
                        self._room.release()
        for key in list(self._containers):
            self._close(key)
        self.cpu_s = time.thread_time()

    def _handle(self, command: _Open | _Write | _Close) -> None:
        if isinstance(command, _Open):
            self._close(command.track_key)
            self._failed.discard(command.track_key)
            sink = EncryptingWriter(command.path, self._keyring)
            try:
                container = av.open(
                    sink, "w", format=command.spec.container, container_options=_MUXER_OPTIONS
                )
                stream = container.add_stream(command.spec.name, rate=30 if command.size else 48000)
            except BaseException:
                sink.close()
                raise
            if isinstance(stream, av.VideoStream) and command.size is not None:
                stream.width, stream.height = command.size
            stream.time_base = MS
            self._containers[command.track_key] = (container, stream, sink)
        elif isinstance(command, _Write):
            if command.track_key in self._failed or command.track_key not in self._containers:
                return
            container, stream, _ = self._containers[command.track_key]
            packet = av.Packet(command.data)
            packet.stream = stream
            packet.time_base = MS
            packet.pts = packet.dts = command.pts_ms
            packet.is_keyframe = command.keyframe
            container.mux(packet)
        else:
            self._close(command.track_key)

    def _close(self, track_key: str) -> None:
        entry = self._containers.pop(track_key, None)
        if entry is not None:
            try:
                entry[0].close()
            finally:
                entry[2].close()
