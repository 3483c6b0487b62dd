"""A track's media time: RTP timestamps mapped to milliseconds from zero, strictly increasing."""

from __future__ import annotations

import logging

from media.rtp_numbers import timestamp_diff

logger = logging.getLogger(__name__)

_MAX_JUMP_S = 30.0


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
        step = timestamp_diff(rtp_timestamp, self._last_rtp)
        if self._ssrc is None:
            self._ticks = 0
        elif ssrc != self._ssrc or abs(step) > _MAX_JUMP_S * self._rate:
            self._ticks += max(1, int((now - self._last_at) * self._rate))
            logger.info("timeline rebased ssrc=%s after %.2f s", ssrc, now - self._last_at)
        elif step <= 0:
            return None
        else:
            self._ticks += step
        self._ssrc = ssrc
        self._last_rtp = rtp_timestamp
        self._last_at = now
        position = self._ticks * 1000 // self._rate
        if position <= self._last_ms:
            position = self._last_ms + 1
        self._last_ms = position
        return position
