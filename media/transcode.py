"""The transcoding fallback: decode one publisher track once, hand raw frames to aiortc encoders.

Used only for a subscriber that shares no codec with the publisher (and as the benchmark's
``--compare transcode`` baseline). Decoding runs on one worker thread per publisher track;
each subscriber's sender encodes with aiortc's stock encoder. Every queue is bounded, so neither
a slow decoder nor a slow encoder grows memory: at most ``_PENDING_FRAMES`` encoded frames wait
for the decoder (when it falls behind, video skips to the next keyframe, which it asks for,
since a decoder cannot continue past a missing frame; audio frames stand alone and are simply
dropped), and each subscriber's raw frame queue drops its oldest frame.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiortc.codecs import get_decoder
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket

logger = logging.getLogger(__name__)

_QUEUE_FRAMES = {"video": 3, "audio": 10}
_PENDING_FRAMES = {"video": 2, "audio": 5}


EncodedFrame = JitterFrame
"""One encoded frame as aiortc's jitter buffer assembles it (``data``, RTP ``timestamp``)."""


class TranscodeDecoder:
    """Transcoding fallback only: reassembles encoded frames from packets and decodes them.

    Uses aiortc's own jitter buffer and decoder factory; ``decode`` is blocking (run it in a
    worker thread).
    """

    def __init__(self, codec: RTCRtpCodecParameters) -> None:
        self.codec = codec
        video = codec.mimeType.lower().startswith("video/")
        self._buffer = (
            JitterBuffer(capacity=512, is_video=True)
            if video
            else JitterBuffer(capacity=16, prefetch=4)
        )
        self._decoder = get_decoder(codec)

    def add(self, packet: RtpPacket) -> tuple[bool, EncodedFrame | None]:
        """Feed one depayloaded packet; returns ``(picture_lost, encoded_frame_or_None)``."""
        return self._buffer.add(packet)

    def decode(self, encoded_frame: EncodedFrame) -> list[Any]:
        return list(self._decoder.decode(encoded_frame))


class RelayedTrack(MediaStreamTrack):
    """Decoded frames of one publisher track for one transcoding subscriber."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.paused = False
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=_QUEUE_FRAMES[kind])

    def offer(self, frame: Any) -> None:
        if self.paused or self.readyState != "live":
            return
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(frame)

    def end(self) -> None:
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self._queue.get()
        if frame is None:
            self.stop()
            raise MediaStreamError
        return frame


class TranscodeSource:
    """Decodes one publisher track for every subscriber that needs raw frames."""

    def __init__(self, track_id: str, kind: str, codec: RTCRtpCodecParameters) -> None:
        self.track_id = track_id
        self.kind = kind
        self.codec = codec
        self._decoder = TranscodeDecoder(codec)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"transcode-{kind}")
        self._loop = asyncio.get_running_loop()
        self._outputs: list[RelayedTrack] = []
        self._decoder_slots = threading.BoundedSemaphore(_PENDING_FRAMES[kind])
        self._keyframe_timestamp: int | None = None
        self._skipping_to_keyframe = False
        self.dropped_frames = 0
        self._closed = False

    def subscribe(self, track: RelayedTrack) -> None:
        """Feed ``track`` with this source's frames (a no-op if it already is)."""
        if track not in self._outputs:
            self._outputs.append(track)

    def unsubscribe(self, track: RelayedTrack) -> None:
        """Stop feeding ``track``; it stays live for the subscriber's next source."""
        if track in self._outputs:
            self._outputs.remove(track)

    @property
    def idle(self) -> bool:
        return not self._outputs

    def feed(self, packet: RtpPacket, keyframe: bool) -> bool:
        """Add a depayloaded packet; ``True`` when the decoder needs a keyframe.

        ``keyframe``: the packet starts one (where a decoder that fell behind resumes).
        """
        if self._closed:
            return False
        if keyframe:
            self._keyframe_timestamp = packet.timestamp
        picture_lost, encoded = self._decoder.add(packet)
        needs_keyframe = bool(picture_lost)
        if encoded is not None:
            needs_keyframe = self._submit(encoded) or needs_keyframe
        return needs_keyframe

    def _submit(self, encoded: EncodedFrame) -> bool:
        """Queue a frame for the decoder; ``True`` when video must skip to a keyframe."""
        if self._skipping_to_keyframe:
            if encoded.timestamp != self._keyframe_timestamp:
                self.dropped_frames += 1
                return True
            self._skipping_to_keyframe = False
        if not self._decoder_slots.acquire(blocking=False):
            self.dropped_frames += 1
            logger.debug("transcode decoder behind track=%s", self.track_id)
            self._skipping_to_keyframe = self.kind == "video"
            return self._skipping_to_keyframe
        self._executor.submit(self._decode, encoded)
        return False

    def _decode(self, encoded: EncodedFrame) -> None:
        try:
            frames = self._decoder.decode(encoded)
        except Exception as exc:  # a corrupt frame must not stop the worker
            logger.info("transcode decode failed track=%s error=%s", self.track_id, exc)
            return
        finally:
            self._decoder_slots.release()
        for frame in frames:
            try:
                self._loop.call_soon_threadsafe(self._publish, frame)
            except RuntimeError:  # the loop closed while this frame was decoding
                return

    def _publish(self, frame: Any) -> None:
        for output in self._outputs:
            output.offer(frame)

    def close(self) -> None:
        """End every output and stop the worker thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for output in self._outputs:
            output.end()
        self._outputs.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)
