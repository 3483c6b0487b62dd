"""``RtpRewriter``: one subscriber's view of a forwarded track's sequence numbers and timestamps.

A subscriber keeps one sendonly transceiver per publisher track for as long as it is in the
consultation, while what feeds it changes: the publisher leaves and comes back with new random
numbering, video pauses for a weak link and resumes, a lost packet forces a restart at a keyframe.
The subscriber's decoder must see one continuous stream through all of that, so each
subscription maps the publisher's numbers onto its own with two offsets, re-derived at every
(re)start (:meth:`RtpRewriter.rebase`):

- the first start picks random numbers (RFC 3550 section 5.1);
- a later start continues one sequence number after the last one sent (plus a gap on a resync,
  see :data:`RESYNC_GAP`) and advances the timestamp by the wall-clock time the stream was
  silent, so the receiver's jitter buffer sees the pause as the pause it was.

Packets from before the latest (re)start are dropped: the subscriber never saw their frame's
start. Only plain integers pass through here; the clock and the random source are injected.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import NamedTuple

from media.rtp_numbers import (
    SEQ_HALF,
    TIMESTAMP_MODULUS,
    seq_add,
    seq_diff,
    timestamp_add,
    timestamp_diff,
)

RESYNC_GAP = 1100
"""Sequence numbers skipped when a stream restarts after a loss that will not be repaired.

A receiver still holding frames that wait for the lost packet (aiortc keeps them until 512 newer
packets arrive) drops them at once, and Chrome clears its NACK list (over 1000 missing) instead of
asking for them.
"""

BASE_REFRESH = 0x4000
"""How far the newest packet may run ahead of the base before the base follows it.

The base tells "from before the (re)start" apart from "newer"; it must stay within half the
sequence space of what arrives, or a long run would make fresh packets look old.
"""


class RewrittenNumbers(NamedTuple):
    """A packet's numbers as its subscriber sees them."""

    sequence: int
    timestamp: int


class RtpRewriter:
    """Maps a publisher's RTP sequence numbers and timestamps onto one subscriber's stream."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._clock = clock
        self._rng = rng or random.Random()
        self._seq_offset = 0
        self._ts_offset = 0
        self._base_seq = 0
        self._highest_seq = 0
        self._started = False
        self._last_out: RewrittenNumbers | None = None
        self._last_out_at = 0.0

    @property
    def started(self) -> bool:
        """Whether a (re)start has set the offsets (no packet is rewritten before one)."""
        return self._started

    @property
    def last_sent(self) -> RewrittenNumbers | None:
        """The numbers of the newest packet rewritten so far (``None`` before the first)."""
        return self._last_out

    def rebase(self, sequence: int, timestamp: int, clock_rate: int, resync: bool = False) -> int:
        """Continue the subscriber's stream from this packet (a keyframe's first packet); the
        subscriber's sequence number for it.

        ``resync``: the subscriber lost a packet that will not be resent; skip
        :data:`RESYNC_GAP` sequence numbers so its receiver gives up on the broken frames.
        """
        if self._last_out is None:
            start_sequence = self._rng.randrange(SEQ_HALF)
            start_timestamp = self._rng.randrange(TIMESTAMP_MODULUS)
        else:
            silent_s = self._clock() - self._last_out_at
            elapsed = max(1, int(silent_s * clock_rate))
            gap = RESYNC_GAP if resync else 0
            start_sequence = seq_add(self._last_out.sequence, 1 + gap)
            start_timestamp = timestamp_add(self._last_out.timestamp, elapsed)
        self._seq_offset = seq_diff(start_sequence, sequence)
        self._ts_offset = timestamp_diff(start_timestamp, timestamp)
        self._base_seq = sequence
        self._highest_seq = sequence
        self._started = True
        return start_sequence

    def rewrite(self, sequence: int, timestamp: int) -> RewrittenNumbers | None:
        """The subscriber's numbers for this packet, or ``None`` to drop it.

        A packet is dropped before the first :meth:`rebase` and when it is older than the
        latest one. Reordered packets keep their place; only the newest moves the stream on.
        """
        if not self._started or seq_diff(sequence, self._base_seq) < 0:
            return None
        out = RewrittenNumbers(
            seq_add(sequence, self._seq_offset), timestamp_add(timestamp, self._ts_offset)
        )
        if seq_diff(sequence, self._highest_seq) >= 0:
            self._highest_seq = sequence
            self._last_out = out
            self._last_out_at = self._clock()
            if seq_add(self._highest_seq, -self._base_seq) > BASE_REFRESH:
                self._base_seq = seq_add(self._highest_seq, -BASE_REFRESH // 2)
        return out
