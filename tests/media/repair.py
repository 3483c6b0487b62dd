"""What a browser's video receiver does to repair loss that aiortc's does not.

aiortc NACKs a missing packet once (again only when a new gap appears) and asks for a
keyframe only when its 512-packet jitter buffer overflows: on a weak link one lost
retransmission stalls its video for about 20 s. A browser NACKs a missing packet again every
round trip (up to 10 times) and asks for a keyframe when no frame has been decodable for a
while (3 s in libwebrtc). Test clients stand in for browsers, so they do the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from media.aiortc_adapter import inspection

RENACK_INTERVAL_S = 0.1
MAX_NACKS = 10
STALL_KEYFRAME_S = 3.0


class LossRepair:
    """Re-NACKs and stall keyframe requests for one aiortc video receiver."""

    def __init__(self, receiver: Any, frames_decoded: Callable[[], int]) -> None:
        self._receiver = receiver
        self._frames_decoded = frames_decoded
        self._nacks: dict[int, int] = {}

    def _media_ssrc(self) -> int | None:
        streams = inspection.receive_statistics(self._receiver)
        if not streams:
            return None
        return max(streams, key=lambda ssrc: streams[ssrc].packets_received)

    def _packets_received(self) -> int:
        streams = inspection.receive_statistics(self._receiver)
        return sum(stats.packets_received for stats in streams.values())

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        decoded, packets, progress_at = -1, 0, loop.time()
        while True:
            await asyncio.sleep(RENACK_INTERVAL_S)
            ssrc = self._media_ssrc()
            if ssrc is None:
                continue
            await self._renack(ssrc)
            now = loop.time()
            frames, arrived = self._frames_decoded(), self._packets_received()
            if frames != decoded:
                decoded, progress_at = frames, now
            elif arrived > packets and now - progress_at >= STALL_KEYFRAME_S:
                progress_at = now
                await inspection.send_pli(self._receiver, ssrc)
            packets = arrived

    async def _renack(self, ssrc: int) -> None:
        generator = inspection.nack_generator(self._receiver)
        if generator is None:
            return
        missing = set(generator.missing)
        self._nacks = {seq: count for seq, count in self._nacks.items() if seq in missing}
        again = sorted(seq for seq in missing if self._nacks.get(seq, 0) < MAX_NACKS)
        if not again:
            return
        for seq in again:
            self._nacks[seq] = self._nacks.get(seq, 0) + 1
        await inspection.send_nack(self._receiver, ssrc, again)
