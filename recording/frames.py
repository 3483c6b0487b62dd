"""From RTP packets to whole encoded video frames, in order, without decoding.

A :class:`VideoDepacketizer` joins one video track's packets (same timestamp, contiguous sequence
numbers, complete at the marker bit) into frames. Incomplete frames are dropped and reported as
losses, so the track can wait for the next keyframe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiortc.rtp import RtpPacket

from media.rtp_numbers import seq_add, timestamp_diff

_MAX_PENDING_FRAMES = 8


@dataclass(frozen=True)
class Frame:
    """One complete encoded frame: its RTP timestamp and codec bytes."""

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


class VideoDepacketizer:
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
        if (
            self._last_timestamp is not None
            and timestamp_diff(timestamp, self._last_timestamp) <= 0
        ):
            return None, False  # late packet of a frame already written or given up
        if not self._pending and self._extends_run(packet, timestamp):
            return self._push_in_order(packet, payload)
        self._spill_run()
        return self._push_any(packet, payload)

    def reset(self) -> None:
        """Forget partial frames (a new publisher stream starts)."""
        self._run = None
        self._pending.clear()
        self._markers.clear()
        self._last_timestamp = None
        self._last_sequence = None

    # The common case, packets in order: collect a frame's payloads in a list (no dicts).

    def _extends_run(self, packet: RtpPacket, timestamp: int) -> bool:
        run = self._run
        if run is not None:
            return run.timestamp == timestamp and run.next_sequence == packet.sequence_number
        return self._starts_frame(packet.payload)

    def _follows_last(self, sequence: int) -> bool:
        return self._last_sequence is None or sequence == seq_add(self._last_sequence, 1)

    def _push_in_order(self, packet: RtpPacket, payload: bytes) -> tuple[Frame | None, bool]:
        sequence = packet.sequence_number
        run = self._run
        if run is None:
            lost = not self._follows_last(sequence)
            run = self._run = _Run(packet.timestamp, sequence, [], lost)
        run.parts.append(payload)
        run.next_sequence = seq_add(sequence, 1)
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
            packets[seq_add(run.first_sequence, index)] = (part, index == 0)

    def _push_any(self, packet: RtpPacket, payload: bytes) -> tuple[Frame | None, bool]:
        timestamp = packet.timestamp
        packets = self._pending.setdefault(timestamp, {})
        packets[packet.sequence_number] = (payload, self._starts_frame(packet.payload))
        if packet.marker:
            self._markers[timestamp] = packet.sequence_number
        lost = False
        if len(self._pending) > _MAX_PENDING_FRAMES:
            oldest = min(self._pending, key=lambda ts: timestamp_diff(ts, timestamp))
            self._give_up(oldest)
            lost = True
        frame, first_sequence = self._complete(timestamp)
        if frame is not None:
            if not self._follows_last(first_sequence):
                lost = True  # whole frames went missing in between
            self._last_sequence = self._markers[timestamp]
            for older in [ts for ts in self._pending if timestamp_diff(ts, timestamp) < 0]:
                self._give_up(older)
                lost = True
            self._pending.pop(timestamp, None)
            self._markers.pop(timestamp, None)
            self._last_timestamp = timestamp
        return frame, lost

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
            sequence = seq_add(sequence, -1)
        return None, 0

    def _give_up(self, timestamp: int) -> None:
        self._pending.pop(timestamp, None)
        self._markers.pop(timestamp, None)
        self.dropped += 1
        if self._last_timestamp is None or timestamp_diff(timestamp, self._last_timestamp) > 0:
            self._last_timestamp = timestamp
