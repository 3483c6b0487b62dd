"""The recording tap: every track of one consultation into its own file, still encoded.

A :class:`ConsultationRecorder` is a :class:`~media.taps.PacketTap` on one consultation's router.
Per track (:class:`TrackRecorder`) it joins video packets into frames
(:class:`~recording.frames.VideoDepacketizer`), waits for a keyframe after any loss, maps RTP
timestamps to a file time that starts at zero and stays monotonic across loss, mute, keyframe
waits and publisher reconnects (:class:`~recording.timeline.Timeline`), and hands the frames to
the recording's :class:`~recording.writer.RecordingWriter` thread through a bounded queue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiortc.rtp import RtpPacket

from media.bitstream import (
    h264_access_unit_facts,
    h264_packet_may_start_frame,
    vp8_keyframe_size,
    vp8_packet_starts_frame,
)
from media.taps import TrackInfo
from recording.files import ENCRYPTED_SUFFIX, make_private_dir, safe_file_name
from recording.frames import Frame, VideoDepacketizer
from recording.keys import Keyring
from recording.model import RecordedTrack
from recording.timeline import Timeline
from recording.writer import CODECS, CodecSpec, RecordingWriter

logger = logging.getLogger(__name__)

_INBOX_S = 0.05  # packets are handled in small batches: warm caches, fewer calls
_KEYFRAME_REQUEST_INTERVAL_S = 1.0
# A keyframe's size when an H.264 stream carries no in-band SPS; decoders use the SPS later.
_FALLBACK_VIDEO_SIZE = (640, 480)


def track_file_stem(track: TrackInfo) -> str:
    """A file-system-safe name for a track's file: ``<participant>-<source>``."""
    return safe_file_name(f"{track.participant_id}-{track.source}", 120)


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

    def summary(self) -> RecordedTrack:
        return RecordedTrack(
            track_name=self.key,
            participant_id=self.track.participant_id,
            kind=self.track.kind,
            source=self.track.source,
            codec=self.track.codec_mime.lower(),
            offset_s=round(self.offset_s, 3),
            duration_s=round(self.duration_s, 3),
            frames=self.frames,
            path=self.path,
        )


class TrackRecorder:
    """One published track: frames from packets, timeline, keyframe gating, segments."""

    def __init__(self, recording: ConsultationRecorder, track: TrackInfo, spec: CodecSpec) -> None:
        self.track = track
        self.spec = spec
        self.segments: list[TrackSegment] = []
        self.dropped_frames = 0
        self._recording = recording
        self._timeline = Timeline(track.clock_rate)
        self._depacketizer: VideoDepacketizer | None = None
        if track.kind == "video":
            starts = vp8_packet_starts_frame if spec.name == "vp8" else h264_packet_may_start_frame
            self._depacketizer = VideoDepacketizer(starts)
        self._ssrc: int | None = None
        self._waiting_keyframe = track.kind == "video"
        self._last_request = 0.0
        self._open_segment: TrackSegment | None = None

    def on_packet(self, packet: RtpPacket, payload: bytes, now: float) -> None:
        if self._ssrc is not None and packet.ssrc != self._ssrc and self._depacketizer is not None:
            self._depacketizer.reset()
            self._waiting_keyframe = True
        self._ssrc = packet.ssrc
        if self._depacketizer is None:
            if payload:
                self._on_frame(packet.ssrc, Frame(packet.timestamp, payload), now)
            return
        before = self._depacketizer.dropped
        frame, lost = self._depacketizer.push(packet, payload)
        if lost:
            self.dropped_frames += self._depacketizer.dropped - before
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
        return h264_access_unit_facts(data)

    def _start_segment(self, size: tuple[int, int] | None, now: float) -> TrackSegment:
        index = len(self.segments)
        stem = track_file_stem(self.track) + (f".{index + 1}" if index else "")
        key = stem
        path = self._recording.folder / f"{stem}.{self.spec.extension}{ENCRYPTED_SUFFIX}"
        if self.track.kind == "video" and size is None:
            size = _FALLBACK_VIDEO_SIZE
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
    tracks: list[RecordedTrack] = field(default_factory=list)
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
