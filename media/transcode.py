"""The transcoding fallback: decode one publisher track once, hand raw frames to aiortc encoders.

Used only for a subscriber that shares no codec with the publisher (and as the benchmark's
``--compare transcode`` baseline). Decoding runs on one worker thread per publisher track;
each subscriber's sender encodes with aiortc's stock encoder. Queues are short and drop the
oldest frame, so a slow encoder never grows memory.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket

from media.forwarding import FrameAssembler

logger = logging.getLogger(__name__)

_QUEUE_FRAMES = {"video": 3, "audio": 10}


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
        self._assembler = FrameAssembler(codec)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"transcode-{kind}")
        self._loop = asyncio.get_running_loop()
        self._outputs: list[RelayedTrack] = []
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

    def feed(self, packet: RtpPacket) -> bool:
        """Add a packet; returns ``True`` when the decoder needs a keyframe."""
        if self._closed:
            return False
        picture_lost, encoded = self._assembler.add(packet)
        if encoded is not None:
            self._executor.submit(self._decode, encoded)
        return bool(picture_lost)

    def _decode(self, encoded: Any) -> None:
        try:
            frames = self._assembler.decode(encoded)
        except Exception as exc:  # a corrupt frame must not stop the worker
            logger.info("transcode decode failed track=%s error=%s", self.track_id, exc)
            return
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
