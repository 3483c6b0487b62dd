"""Spreads one subscriber's video packets over time instead of sending each frame as a burst.

A keyframe arrives from the publisher as a burst of packets; forwarded at once into a slow access
link it overflows the link's queue (a 20 kB keyframe is 0.65 s of a 250 kbit/s link). The pacer
sends at ``rate_kbps`` (a little above the subscriber's estimate), so the link's queue only
absorbs the difference. Retransmissions wait in a queue of their own that goes first, each
until its deadline (after which it is useless) and only while ``may_retransmit`` allows it (the
subscriber's retransmission budget). Audio never waits here: audio first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)

# A send either completes within the call (a forwarded packet) or returns what to await (a
# retransmission through aiortc).
Send = Callable[[], Awaitable[None] | None]
Expired = Callable[[], None]
_RETRY_S = 0.02


class Pacer:
    """Two FIFOs of sends (retransmissions first, then video) drained at ``rate_kbps``."""

    def __init__(
        self,
        rate_kbps: float,
        may_retransmit: Callable[[int], bool],
    ) -> None:
        self.rate_kbps = rate_kbps
        self._may_retransmit = may_retransmit
        self._video: deque[tuple[int, Send]] = deque()
        self._retransmissions: deque[tuple[int, Send, float, Expired]] = deque()
        self._video_bytes = 0
        self._next_at = 0.0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def idle(self) -> bool:
        """No video waiting: a packet sent now directly overtakes nothing."""
        return not self._video

    def queued_s(self, exempt_bytes: int = 0) -> float:
        """How long the video queued now, less ``exempt_bytes`` of it, takes to leave."""
        queued = max(0, self._video_bytes - exempt_bytes)
        return queued / (max(self.rate_kbps, 1.0) * 125.0)

    def enqueue(self, size: int, send: Send) -> None:
        """A video packet, sent in order after everything queued before it."""
        if self._closed:
            return
        self._video.append((size, send))
        self._video_bytes += size
        self._start()

    def enqueue_retransmission(
        self, size: int, send: Send, deadline: float, expired: Expired
    ) -> None:
        """A retransmission: ahead of video; ``expired()`` if still queued at ``deadline``."""
        if self._closed:
            return
        self._retransmissions.append((size, send, deadline, expired))
        self._start()

    def _start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._drain())
        self._wake.set()

    def _next(self, now: float) -> tuple[int, Send] | None:
        while self._retransmissions and self._retransmissions[0][2] < now:
            self._retransmissions.popleft()[3]()
        if self._retransmissions and self._may_retransmit(self._retransmissions[0][0]):
            size, send, _, _ = self._retransmissions.popleft()
            return size, send
        if self._video:
            size, send = self._video.popleft()
            self._video_bytes -= size
            return size, send
        return None

    async def _drain(self) -> None:
        while True:
            now = time.monotonic()
            if self._next_at > now:
                await asyncio.sleep(self._next_at - now)
                continue
            item = self._next(now)
            if item is None:
                self._wake.clear()
                if self._retransmissions:  # waiting for budget
                    await asyncio.sleep(_RETRY_S)
                else:
                    await self._wake.wait()
                continue
            size, send = item
            self._next_at = max(now, self._next_at) + size / (max(self.rate_kbps, 1.0) * 125.0)
            try:
                pending = send()
                if pending is not None:
                    await pending
            except Exception:
                logger.exception("paced send failed")

    async def close(self) -> None:
        self._closed = True
        self._video.clear()
        self._retransmissions.clear()
        self._video_bytes = 0
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
