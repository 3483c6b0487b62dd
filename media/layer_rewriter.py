"""``LayerRewriter``: which VP8 temporal layers one subscriber gets, and its numbering without the
rest.

A publisher sending VP8 with temporal layers (L1T2, L1T3) marks each frame with its layer (TID)
and whether it depends on base layer frames only (the layer-sync bit Y); RFC 7741 section 4.2.
A subscriber whose budget carries fewer layers gets every frame up to :attr:`LayerRewriter.current`
and none above it, and must still see a stream without holes: RTP sequence numbers contiguous,
PictureID counting the pictures it gets, TL0PICIDX as the publisher sent it (base layer
pictures are never dropped here). Layers change only where a decoder can follow:

- **down** at the next picture (nothing below a layer refers to it);
- **up** one layer at a time, at a picture of the next layer with Y set (it refers only to base
  layer pictures, which the subscriber has), or to the target at once at a keyframe. A TL0
  picture is not an up-switch point: libwebrtc's L1T3 pattern has TL1 pictures that refer to the
  previous TL1 picture, and sets Y periodically (every 8 pictures) so that SFUs can switch there.

Sequence numbers of dropped packets are squeezed out: a packet gets its publisher number less
the dropped ones before it (:attr:`LayerNumbers.sequence`), which
:class:`~media.rtp_rewriter.RtpRewriter` then maps onto the subscriber's stream. Late and resent
packets (a publisher's retransmission, reordering) get the numbers their picture got, from
short memories of recent pictures and of the runs of squeezed-out numbers; a late packet of a
dropped picture is dropped again, and one too old to place is dropped. A lost packet whose
picture cannot be told (between two pictures) keeps its number; if it later turns out to be of
a dropped layer it leaves a hole the subscriber reads as one lost packet.

Only plain integers pass through here.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

from media.rtp_numbers import seq_add, seq_diff, timestamp_diff
from media.vp8_descriptor import TL0_MODULUS, Vp8Descriptor

MAX_LAYER = 3
"""The highest TID the descriptor can carry (2 bits)."""

PICTURE_MEMORY = 128
"""Recent pictures whose fate is remembered for their late packets (about 4 s at 30 fps)."""

RUN_MEMORY = 64
"""Recent runs of squeezed-out sequence numbers remembered for late packets."""

_UNKNOWN = -1


class LayerNumbers(NamedTuple):
    """A forwarded packet's numbers before the subscriber's own offsets."""

    sequence: int
    """The publisher's sequence number less the dropped packets before it (16 bits)."""
    picture_id: int | None
    tl0_index: int | None


class _Run(NamedTuple):
    first: int
    last: int
    squeezed_before: int


class LayerRewriter:
    """One subscriber's temporal layer of one VP8 track, and the numbers of what it gets."""

    def __init__(self) -> None:
        self.target = MAX_LAYER
        self.current: int | None = None
        # Picture (RTP timestamp) -> its picture-id offset when forwarded, None when dropped.
        self._pictures: dict[int, int | None] = {}
        self._newest_picture: int | None = None
        self._highest = 0
        self._highest_picture: int | None = None
        self._highest_ended_frame = True
        self._highest_dropped = False
        self._floor = 0
        self._squeezed = 0
        self._runs: deque[_Run] = deque()
        self._picture_offset = 0
        self._tl0_offset = 0
        self._last_picture_id: int | None = None
        self._last_tl0: int | None = None

    @property
    def started(self) -> bool:
        return self.current is not None

    @property
    def squeezing(self) -> bool:
        """Whether packets were dropped since the (re)start: the subscriber's sequence numbers
        no longer follow the publisher's, so only packets rewritten here may be sent."""
        return self._squeezed > 0

    def restart(self, sequence: int, descriptor: Vp8Descriptor) -> None:
        """The subscriber's stream (re)starts with this packet, the first of a keyframe.

        Everything up to the target layer can be decoded from here. Packets from before it are
        dropped; picture ids and TL0PICIDX continue from the last ones the subscriber got.
        """
        self.current = self.target
        self._pictures.clear()
        self._runs.clear()
        self._squeezed = 0
        self._newest_picture = None
        self._highest = self._floor = seq_add(sequence, -1)
        self._highest_picture = None
        self._highest_ended_frame = True
        self._highest_dropped = False
        picture_id = descriptor.picture_id
        if picture_id is not None and self._last_picture_id is not None:
            modulus = descriptor.picture_id_modulus
            self._picture_offset = (picture_id - self._last_picture_id - 1) % modulus
        else:
            self._picture_offset = 0
        if descriptor.tl0_index is not None and self._last_tl0 is not None:
            self._tl0_offset = (descriptor.tl0_index - self._last_tl0 - 1) % TL0_MODULUS
        else:
            self._tl0_offset = 0

    def admit(
        self,
        sequence: int,
        timestamp: int,
        marker: bool,
        descriptor: Vp8Descriptor,
        keyframe: bool = False,
    ) -> LayerNumbers | None:
        """This packet's numbers for the subscriber, or ``None`` to drop it.

        ``keyframe``: the packet is the first of a keyframe (a switch-up point for all layers).
        """
        if self.current is None:
            return None
        if seq_diff(sequence, self._highest) > 0:
            forwarded = self._decide(timestamp, descriptor, keyframe)
            self._squeeze(sequence, timestamp, descriptor.starts_frame, forwarded)
            self._highest = sequence
            self._highest_picture = timestamp
            self._highest_ended_frame = marker
            self._highest_dropped = not forwarded
            if not forwarded:
                return None
            return self._numbers(seq_add(sequence, -self._squeezed), timestamp, descriptor)
        if seq_diff(sequence, self._floor) <= 0:
            return None
        if self._pictures.get(timestamp, _UNKNOWN) in (None, _UNKNOWN):
            return None  # a dropped picture's, or one too old to place
        squeezed = self._squeezed_before(sequence)
        if squeezed is None:
            return None
        return self._numbers(seq_add(sequence, -squeezed), timestamp, descriptor)

    def _numbers(self, sequence: int, timestamp: int, descriptor: Vp8Descriptor) -> LayerNumbers:
        offset = self._pictures[timestamp]
        assert offset is not None
        picture_id = descriptor.picture_id
        if picture_id is not None:
            picture_id = (picture_id - offset) % descriptor.picture_id_modulus
        tl0 = descriptor.tl0_index
        if tl0 is not None:
            tl0 = (tl0 - self._tl0_offset) % TL0_MODULUS
        if timestamp == self._newest_picture:
            self._last_picture_id = picture_id if picture_id is not None else self._last_picture_id
            self._last_tl0 = tl0 if tl0 is not None else self._last_tl0
        return LayerNumbers(sequence, picture_id, tl0)

    def _decide(self, timestamp: int, descriptor: Vp8Descriptor, keyframe: bool) -> bool:
        """Whether this packet's picture goes to the subscriber; a new picture is decided here,
        and only at a new picture does the layer change."""
        known = self._pictures.get(timestamp, _UNKNOWN)
        if known != _UNKNOWN:
            return known is not None
        newest = self._newest_picture
        if newest is not None and timestamp_diff(timestamp, newest) <= 0:
            return False  # an older picture never seen: where it stood is not known
        current = self.current
        assert current is not None
        layer = descriptor.temporal_id or 0
        if keyframe:
            current = self.target
        elif self.target < current:
            current = self.target
        elif self.target > current and descriptor.layer_sync and layer == current + 1:
            current = layer
        self.current = current
        forwarded = layer <= current
        if not forwarded:
            self._picture_offset += 1
        self._remember(timestamp, self._picture_offset if forwarded else None)
        self._newest_picture = timestamp
        return forwarded

    def _remember(self, timestamp: int, offset: int | None) -> None:
        self._pictures[timestamp] = offset
        if len(self._pictures) > PICTURE_MEMORY:
            del self._pictures[next(iter(self._pictures))]

    def _squeeze(self, sequence: int, timestamp: int, starts_frame: bool, forwarded: bool) -> None:
        """Squeeze out this packet if dropped, and the unseen ones before it when they are
        known to belong to a dropped picture."""
        gap_first = seq_add(self._highest, 1)
        gap = seq_diff(sequence, gap_first)
        if gap > 0:
            if timestamp == self._highest_picture or (
                self._highest_ended_frame and not starts_frame
            ):
                gap_dropped = not forwarded  # the start of this packet's picture
            elif starts_frame and not self._highest_ended_frame:
                gap_dropped = self._highest_dropped  # the end of the previous picture
            else:
                gap_dropped = False  # whole pictures, or a boundary not known: keep numbers
            if gap_dropped:
                self._exclude(gap_first, gap)
        if not forwarded:
            self._exclude(sequence, 1)

    def _exclude(self, first: int, count: int) -> None:
        last = seq_add(first, count - 1)
        runs = self._runs
        if runs and seq_add(runs[-1].last, 1) == first:
            runs[-1] = runs[-1]._replace(last=last)
        else:
            runs.append(_Run(first, last, self._squeezed))
            if len(runs) > RUN_MEMORY:
                self._floor = runs.popleft().last
        self._squeezed += count

    def _squeezed_before(self, sequence: int) -> int | None:
        """How many numbers were squeezed out before this (late) packet; ``None`` if its own
        number was (it cannot be sent without taking another packet's place)."""
        for run in reversed(self._runs):
            if seq_diff(sequence, run.last) > 0:
                return run.squeezed_before + seq_diff(run.last, run.first) + 1
            if seq_diff(sequence, run.first) >= 0:
                return None
        return self._runs[0].squeezed_before if self._runs else self._squeezed
