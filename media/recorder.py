"""Per-track recording of forwarded media: encoded packets into PyAV muxers, no decode, no encode.

A :class:`ConsultationRecorder` is a :class:`~media.taps.PacketTap` on one consultation's router.
Per track it assembles video frames from RTP packets (same timestamp, contiguous sequence
numbers, complete at the marker bit; incomplete frames are dropped and the track waits for the
next keyframe), rebases RTP timestamps so every file starts at zero and stays monotonic across
loss, mute, keyframe waits and publisher reconnects, and hands the frames to one writer thread
per recording through a bounded queue (overflow drops and counts, it never grows). The muxers
write into :class:`~media.recording_files.EncryptingWriter` files, so plaintext never reaches
the disk. Matroska clusters are closed every second and flushed, so a killed process leaves a
file that decrypts to a recording playable up to its last second.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from aiortc.rtp import RtpPacket

from media.recording_files import (
    ENCRYPTED_SUFFIX,
    DecryptingReader,
    EncryptingWriter,
    RecordingFileError,
    make_private_dir,
)
from media.recording_keys import Keyring
from media.taps import TrackInfo

logger = logging.getLogger(__name__)

MS = Fraction(1, 1000)
_SEQ_HALF = 0x8000
_TS_HALF = 1 << 31
_MAX_JUMP_S = 30.0
_MAX_PENDING_FRAMES = 8
_BATCH_FRAMES = 64
_INBOX_S = 0.05  # packets are handled in small batches: warm caches, fewer calls
_KEYFRAME_REQUEST_INTERVAL_S = 1.0
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


def track_file_stem(track: TrackInfo) -> str:
    """A file-system-safe name for a track's file: ``<participant>-<source>``."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{track.participant_id}-{track.source}")[:120]


# ----- codec bitstream facts, read without decoding ------------------------------------------


def vp8_packet_starts_frame(rtp_payload: bytes) -> bool:
    """RFC 7741 descriptor: start of partition 0 (S=1, PID=0) opens a frame."""
    return bool(rtp_payload) and (rtp_payload[0] & 0x10) != 0 and (rtp_payload[0] & 0x07) == 0


def h264_packet_may_start_frame(rtp_payload: bytes) -> bool:
    """RFC 6184: anything but the continuation of a fragmented NAL unit may open a frame."""
    if not rtp_payload:
        return False
    if rtp_payload[0] & 0x1F == 28:  # FU-A: only its start fragment opens a NAL unit
        return len(rtp_payload) > 1 and bool(rtp_payload[1] & 0x80)
    return True


def vp8_keyframe_size(frame: bytes) -> tuple[int, int] | None:
    """Width and height from a VP8 keyframe header; ``None`` for an interframe."""
    if len(frame) < 10 or frame[0] & 0x01 or frame[3:6] != b"\x9d\x01\x2a":
        return None
    width = int.from_bytes(frame[6:8], "little") & 0x3FFF
    height = int.from_bytes(frame[8:10], "little") & 0x3FFF
    return width, height


def annexb_nal_units(data: bytes) -> list[bytes]:
    """The NAL units of an H.264 Annex-B byte stream (start codes removed)."""
    units = []
    for part in re.split(b"\x00\x00\x01", data):
        unit = part.rstrip(b"\x00")
        if unit:
            units.append(unit)
    return units


class _BitReader:
    def __init__(self, data: bytes) -> None:
        self._bits = "".join(f"{byte:08b}" for byte in data)
        self._at = 0

    def bit(self) -> int:
        value = int(self._bits[self._at])
        self._at += 1
        return value

    def bits(self, count: int) -> int:
        value = int(self._bits[self._at : self._at + count] or "0", 2)
        self._at += count
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        value = self.ue()
        return (value + 1) // 2 if value % 2 else -(value // 2)


def h264_sps_size(sps: bytes) -> tuple[int, int] | None:
    """Width and height of an H.264 SPS NAL unit (ITU-T H.264 7.3.2.1.1), or ``None``."""
    rbsp = sps[1:].replace(b"\x00\x00\x03", b"\x00\x00")
    try:
        reader = _BitReader(rbsp[:64])
        profile = reader.bits(8)
        reader.bits(16)
        reader.ue()
        chroma_format = 1
        if profile in (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135):
            chroma_format = reader.ue()
            if chroma_format == 3:
                reader.bit()
            reader.ue()
            reader.ue()
            reader.bit()
            if reader.bit():
                for index in range(8 if chroma_format != 3 else 12):
                    if reader.bit():
                        last, following = 8, 8
                        for _ in range(16 if index < 6 else 64):
                            if following:
                                following = (last + reader.se() + 256) % 256
                            last = following or last
        reader.ue()
        order_type = reader.ue()
        if order_type == 0:
            reader.ue()
        elif order_type == 1:
            reader.bit()
            reader.se()
            reader.se()
            for _ in range(reader.ue()):
                reader.se()
        reader.ue()
        reader.bit()
        width_mbs = reader.ue() + 1
        height_units = reader.ue() + 1
        frame_mbs_only = reader.bit()
        if not frame_mbs_only:
            reader.bit()
        reader.bit()
        crop = (0, 0, 0, 0)
        if reader.bit():
            crop = (reader.ue(), reader.ue(), reader.ue(), reader.ue())
    except (IndexError, ValueError):
        return None
    crop_x = 2 if chroma_format in (1, 2) else 1
    crop_y = (2 if chroma_format == 1 else 1) * (2 - frame_mbs_only)
    width = width_mbs * 16 - crop_x * (crop[0] + crop[1])
    height = (2 - frame_mbs_only) * height_units * 16 - crop_y * (crop[2] + crop[3])
    return (width, height) if width > 0 and height > 0 else None


# ----- frames and timing ---------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    """One complete encoded frame: RTP timestamp, codec bytes, whether it is a keyframe."""

    timestamp: int
    data: bytes


@dataclass
class _Run:
    """A frame being received in order: its timestamp, sequence numbers and payloads so far."""

    timestamp: int
    first_sequence: int
    parts: list[bytes]
    lost: bool
    next_sequence: int = 0


class FrameAssembler:
    """Joins one video track's packets into complete frames, in order; drops incomplete ones."""

    def __init__(self, starts_frame: Callable[[bytes], bool]) -> None:
        self._starts_frame = starts_frame
        self._pending: dict[int, dict[int, tuple[bytes, bool]]] = {}
        self._markers: dict[int, int] = {}
        self._last_timestamp: int | None = None
        self._last_sequence: int | None = None
        self._run: _Run | None = None
        self.dropped = 0

    def push(self, packet: RtpPacket, payload: bytes) -> tuple[Frame | None, bool]:
        """Add a packet; returns a frame it completed (if any) and whether frames were lost."""
        timestamp = packet.timestamp
        if self._last_timestamp is not None and _ts_diff(timestamp, self._last_timestamp) <= 0:
            return None, False  # late packet of a frame already written or given up
        if not self._pending and self._extends_run(packet, timestamp):
            return self._push_in_order(packet, payload)
        self._spill_run()
        return self._push_any(packet, payload)

    # The common case, packets in order: collect a frame's payloads in a list (no dicts).

    def _extends_run(self, packet: RtpPacket, timestamp: int) -> bool:
        run = self._run
        if run is not None:
            return run.timestamp == timestamp and run.next_sequence == packet.sequence_number
        return self._starts_frame(packet.payload)

    def _push_in_order(self, packet: RtpPacket, payload: bytes) -> tuple[Frame | None, bool]:
        sequence = packet.sequence_number
        run = self._run
        if run is None:
            lost = (
                self._last_sequence is not None and sequence != (self._last_sequence + 1) & 0xFFFF
            )
            run = self._run = _Run(packet.timestamp, sequence, [], lost)
        run.parts.append(payload)
        run.next_sequence = (sequence + 1) & 0xFFFF
        if not packet.marker:
            return None, False
        self._run = None
        self._last_sequence = sequence
        self._last_timestamp = run.timestamp
        return Frame(run.timestamp, b"".join(run.parts)), run.lost

    def _spill_run(self) -> None:
        """Out of order: move the frame being built into the general (reordering) path."""
        run, self._run = self._run, None
        if run is None:
            return
        packets = self._pending.setdefault(run.timestamp, {})
        for index, part in enumerate(run.parts):
            packets[(run.first_sequence + index) & 0xFFFF] = (part, index == 0)

    def _push_any(self, packet: RtpPacket, payload: bytes) -> tuple[Frame | None, bool]:
        timestamp = packet.timestamp
        packets = self._pending.setdefault(timestamp, {})
        packets[packet.sequence_number] = (payload, self._starts_frame(packet.payload))
        if packet.marker:
            self._markers[timestamp] = packet.sequence_number
        lost = False
        if len(self._pending) > _MAX_PENDING_FRAMES:
            oldest = min(self._pending, key=lambda ts: _ts_diff(ts, timestamp))
            self._give_up(oldest)
            lost = True
        frame, first_sequence = self._complete(timestamp)
        if frame is not None:
            if (
                self._last_sequence is not None
                and first_sequence != (self._last_sequence + 1) & 0xFFFF
            ):
                lost = True  # whole frames went missing in between
            self._last_sequence = self._markers[timestamp]
            for older in [ts for ts in self._pending if _ts_diff(ts, timestamp) < 0]:
                self._give_up(older)
                lost = True
            self._pending.pop(timestamp, None)
            self._markers.pop(timestamp, None)
            self._last_timestamp = timestamp
        return frame, lost

    def reset(self) -> None:
        """Forget partial frames (a new publisher stream starts)."""
        self._run = None
        self._pending.clear()
        self._markers.clear()
        self._last_timestamp = None
        self._last_sequence = None

    def _complete(self, timestamp: int) -> tuple[Frame | None, int]:
        marker = self._markers.get(timestamp)
        if marker is None:
            return None, 0
        packets = self._pending[timestamp]
        parts: list[bytes] = []
        sequence = marker
        for _ in range(len(packets)):
            entry = packets.get(sequence)
            if entry is None:
                return None, 0  # a gap: maybe still in flight
            parts.append(entry[0])
            if entry[1]:
                parts.reverse()
                return Frame(timestamp, b"".join(parts)), sequence
            sequence = (sequence - 1) & 0xFFFF
        return None, 0

    def _give_up(self, timestamp: int) -> None:
        self._pending.pop(timestamp, None)
        self._markers.pop(timestamp, None)
        self.dropped += 1
        if self._last_timestamp is None or _ts_diff(timestamp, self._last_timestamp) > 0:
            self._last_timestamp = timestamp


def _ts_diff(a: int, b: int) -> int:
    """``a - b`` for 32-bit RTP timestamps, as a signed difference."""
    return ((a - b + _TS_HALF) & 0xFFFFFFFF) - _TS_HALF


class Timeline:
    """Maps one track's RTP timestamps to milliseconds from zero, strictly increasing.

    A new SSRC (the publisher reconnected) or an implausible jump continues from the wall-clock
    time since the last frame, so the file keeps the real pause and never goes backwards.
    """

    def __init__(self, clock_rate: int) -> None:
        self._rate = clock_rate
        self._ssrc: int | None = None
        self._last_rtp = 0
        self._ticks = 0
        self._last_ms = -1
        self._last_at = 0.0

    @property
    def last_ms(self) -> int:
        return self._last_ms

    def position_ms(self, ssrc: int, rtp_timestamp: int, now: float) -> int | None:
        """The frame's time in ms, or ``None`` if it would not move forward (late, duplicate)."""
        if self._ssrc is None:
            self._ticks = 0
        elif (
            ssrc != self._ssrc
            or abs(_ts_diff(rtp_timestamp, self._last_rtp)) > _MAX_JUMP_S * self._rate
        ):
            self._ticks += max(1, int((now - self._last_at) * self._rate))
            logger.info("timeline rebased ssrc=%s after %.2f s", ssrc, now - self._last_at)
        else:
            step = _ts_diff(rtp_timestamp, self._last_rtp)
            if step <= 0:
                return None
            self._ticks += step
        self._ssrc = ssrc
        self._last_rtp = rtp_timestamp
        self._last_at = now
        position = self._ticks * 1000 // self._rate
        if position <= self._last_ms:
            position = self._last_ms + 1
        self._last_ms = position
        return position


# ----- the writer thread ---------------------------------------------------------------------


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


# ----- per track and per consultation ---------------------------------------------------------


@dataclass
class TrackSegment:
    """One file of one track (a new segment starts if the publisher's codec changes)."""

    track: TrackInfo
    key: str
    path: Path
    offset_s: float
    first_ms: int = -1
    last_ms: int = 0
    frame_ms: int = 0
    frames: int = 0

    @property
    def duration_s(self) -> float:
        return max(0, self.last_ms + self.frame_ms - max(self.first_ms, 0)) / 1000

    def summary(self) -> dict[str, Any]:
        return {
            "track_name": self.key,
            "participant_id": self.track.participant_id,
            "kind": self.track.kind,
            "source": self.track.source,
            "codec": self.track.codec_mime.lower(),
            "offset_s": round(self.offset_s, 3),
            "duration_s": round(self.duration_s, 3),
            "frames": self.frames,
            "path": str(self.path),
        }


class TrackRecorder:
    """One published track: frames from packets, timeline, keyframe gating, segments."""

    def __init__(self, recording: ConsultationRecorder, track: TrackInfo, spec: CodecSpec) -> None:
        self.track = track
        self.spec = spec
        self.segments: list[TrackSegment] = []
        self.dropped_frames = 0
        self._recording = recording
        self._timeline = Timeline(track.clock_rate)
        self._assembler: FrameAssembler | None = None
        if track.kind == "video":
            starts = vp8_packet_starts_frame if spec.name == "vp8" else h264_packet_may_start_frame
            self._assembler = FrameAssembler(starts)
        self._ssrc: int | None = None
        self._waiting_keyframe = track.kind == "video"
        self._last_request = 0.0
        self._open_segment: TrackSegment | None = None

    def on_packet(self, packet: RtpPacket, payload: bytes, now: float) -> None:
        if self._ssrc is not None and packet.ssrc != self._ssrc and self._assembler is not None:
            self._assembler.reset()
            self._waiting_keyframe = True
        self._ssrc = packet.ssrc
        if self._assembler is None:
            if payload:
                self._on_frame(packet.ssrc, Frame(packet.timestamp, payload), now)
            return
        before = self._assembler.dropped
        frame, lost = self._assembler.push(packet, payload)
        if lost:
            self.dropped_frames += self._assembler.dropped - before
            self._wait_for_keyframe(now)
        if frame is not None:
            self._on_frame(packet.ssrc, frame, now)

    def _on_frame(self, ssrc: int, frame: Frame, now: float) -> None:
        keyframe, size = self._inspect(frame.data)
        if self._waiting_keyframe:
            if not keyframe:
                self.dropped_frames += 1
                self._wait_for_keyframe(now)
                return
            self._waiting_keyframe = False
        position = self._timeline.position_ms(ssrc, frame.timestamp, now)
        if position is None:
            return
        segment = self._open_segment
        if segment is None:
            segment = self._start_segment(size, now)
        if not self._recording.writer.write(segment.key, position, frame.data, keyframe):
            self.dropped_frames += 1
            self._recording.queue_drops += 1
            if self.track.kind == "video":
                self._wait_for_keyframe(now)
            return
        if segment.first_ms < 0:
            segment.first_ms = position
        elif self.track.kind == "audio" or segment.frames == 1:
            segment.frame_ms = position - segment.last_ms
        segment.last_ms = position
        segment.frames += 1

    def _inspect(self, data: bytes) -> tuple[bool, tuple[int, int] | None]:
        if self.track.kind == "audio":
            return True, None
        if self.spec.name == "vp8":
            size = vp8_keyframe_size(data)
            return size is not None, size
        units = annexb_nal_units(data)
        keyframe = any(unit[0] & 0x1F == 5 for unit in units)
        sps = next((unit for unit in units if unit[0] & 0x1F == 7), None)
        return keyframe, h264_sps_size(sps) if sps is not None else None

    def _start_segment(self, size: tuple[int, int] | None, now: float) -> TrackSegment:
        index = len(self.segments)
        stem = track_file_stem(self.track) + (f".{index + 1}" if index else "")
        key = stem
        path = self._recording.folder / f"{stem}.{self.spec.extension}{ENCRYPTED_SUFFIX}"
        if self.track.kind == "video" and size is None:
            size = (
                640,
                480,
            )  # an H.264 keyframe without an in-band SPS; decoders use the SPS later
        segment = TrackSegment(self.track, key, path, now - self._recording.started_at)
        self._recording.writer.open(key, path, self.spec, size)
        self.segments.append(segment)
        self._open_segment = segment
        logger.info(
            "recording track started recording=%s track=%s codec=%s",
            self._recording.recording_id,
            self.track.track_id,
            self.spec.name,
        )
        return segment

    def _wait_for_keyframe(self, now: float) -> None:
        self._waiting_keyframe = True
        if now - self._last_request >= _KEYFRAME_REQUEST_INTERVAL_S:
            self._last_request = now
            self._recording.request_keyframes()

    def end(self) -> None:
        """The publisher stopped: close the current file."""
        if self._open_segment is not None:
            self._recording.writer.close_track(self._open_segment.key)
            self._open_segment = None


@dataclass
class RecordingResult:
    """What a finished recording produced, for the index."""

    recording_id: str
    consultation_id: str
    started_at: float
    stopped_at: float
    tracks: list[dict[str, Any]] = field(default_factory=list)
    dropped_frames: int = 0
    queue_drops: int = 0
    errors: dict[str, str] = field(default_factory=dict)


class ConsultationRecorder:
    """Records every track of one consultation into its own file (a :class:`PacketTap`).

    ``admits(participant_id)`` decides, per packet, whose media may be recorded (default: all).
    """

    def __init__(
        self,
        recording_id: str,
        consultation_id: str,
        folder: Path,
        request_keyframes: Callable[[], None],
        keyring: Keyring,
        max_queued_frames: int = 1024,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        admits: Callable[[str], bool] | None = None,
    ) -> None:
        self.recording_id = recording_id
        self.consultation_id = consultation_id
        self.folder = folder
        self.request_keyframes = request_keyframes
        self.clock = clock
        self.started_at = clock()
        self.started_wall = wall_clock()
        self.queue_drops = 0
        self._wall_clock = wall_clock
        self._admits = admits
        self._tracks: dict[str, TrackRecorder] = {}
        self._inbox: list[tuple[TrackInfo, RtpPacket, bytes, float]] = []
        self._inbox_since = 0.0
        self._unsupported: set[str] = set()
        self._stopped = False
        make_private_dir(folder)
        self.writer = RecordingWriter(recording_id, keyring, max_queued_frames)
        request_keyframes()
        logger.info("recording started recording=%s consultation=%s", recording_id, consultation_id)

    def on_rtp(self, track: TrackInfo, packet: RtpPacket, payload: bytes) -> None:
        if self._stopped or (self._admits is not None and not self._admits(track.participant_id)):
            return  # e.g. a guest who has not acknowledged the recording yet
        now = self.clock()
        inbox = self._inbox
        if not inbox:
            self._inbox_since = now
        inbox.append((track, packet, payload, now))
        if now - self._inbox_since >= _INBOX_S:
            self._drain()

    def _drain(self) -> None:
        """Handle the packets that came since the last drain, in arrival order."""
        inbox, self._inbox = self._inbox, []
        for track, packet, payload, arrived in inbox:
            recorder = self._tracks.get(track.track_id)
            if recorder is None or recorder.track.codec_mime != track.codec_mime:
                recorder = self._track(track, recorder)
                if recorder is None:
                    continue
            recorder.on_packet(packet, payload, arrived)

    def on_track_ended(self, track: TrackInfo) -> None:
        self._drain()
        recorder = self._tracks.get(track.track_id)
        if recorder is not None and not self._stopped:
            recorder.end()

    def _track(self, track: TrackInfo, previous: TrackRecorder | None) -> TrackRecorder | None:
        spec = CODECS.get(track.codec_mime.lower())
        if spec is None:
            if track.track_id not in self._unsupported:
                self._unsupported.add(track.track_id)
                logger.warning(
                    "recording skips codec recording=%s track=%s codec=%s",
                    self.recording_id,
                    track.track_id,
                    track.codec_mime,
                )
            return None
        recorder = TrackRecorder(self, track, spec)
        if previous is not None:  # codec changed: keep the old segments, start a new one
            previous.end()
            recorder.segments = previous.segments
            recorder.dropped_frames = previous.dropped_frames
        self._tracks[track.track_id] = recorder
        return recorder

    async def stop(self) -> RecordingResult:
        """Finish every file (idempotent) and describe them."""
        if not self._stopped:
            self._drain()
            self._stopped = True
            await asyncio.to_thread(self.writer.stop)
            logger.info(
                "recording stopped recording=%s consultation=%s drops=%d writer_cpu_s=%.3f",
                self.recording_id,
                self.consultation_id,
                self.queue_drops,
                self.writer.cpu_s,
            )
        result = RecordingResult(
            self.recording_id,
            self.consultation_id,
            self.started_wall,
            self._wall_clock(),
            queue_drops=self.queue_drops,
            errors=dict(self.writer.errors),
        )
        for recorder in self._tracks.values():
            result.dropped_frames += recorder.dropped_frames
            result.tracks.extend(
                segment.summary()
                for segment in recorder.segments
                if segment.frames and segment.key not in self.writer.errors
            )
        return result


def describe_track_file(path: Path, keyring: Keyring) -> dict[str, Any] | None:
    """Index facts of a track file found on disk after a crash (reads packets, never decodes).

    A killed recorder leaves no duration in the header, so the last packet's time gives it; the
    participant and source come from the file name (``<participant>-<source>[.<n>].<ext>.enc``).
    """
    stem = path.name.split(".")[0]
    participant_id, _, source = stem.rpartition("-")
    try:
        with DecryptingReader(path, keyring) as reader, av.open(reader) as container:
            stream = container.streams[0]
            codec, kind = stream.codec_context.name, stream.type  # read before closing
            frames, last = _count_packets(container, stream)
    except (av.error.FFmpegError, IndexError, RecordingFileError):
        return None
    if not frames:
        return None
    plain_name = path.name.removesuffix(ENCRYPTED_SUFFIX)
    return {
        "track_name": plain_name[: plain_name.rindex(".")],
        "participant_id": participant_id,
        "kind": kind,
        "source": source,
        "codec": f"{kind}/{codec}",
        "offset_s": 0.0,
        "duration_s": round(last, 3),
        "frames": frames,
        "path": str(path),
    }


def _count_packets(container: Any, stream: Any) -> tuple[int, float]:
    """Packets and the last one's time, up to where a damaged tail stops the demuxer."""
    frames, last = 0, 0.0
    try:
        for packet in container.demux(stream):
            if packet.pts is not None and packet.time_base is not None:
                frames += 1
                last = float(packet.pts * packet.time_base)
    except av.error.FFmpegError:
        pass  # the cut-off cluster of a killed recorder: everything before it counts
    return frames, last
