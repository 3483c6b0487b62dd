"""REMB to a publisher: the server's own receive estimate, capped by what subscribers can take.

aiortc's receivers send REMB with the server's receive-side estimate of each incoming video
stream. :class:`PublisherFeedback` gets them instead (the receiver hands them here rather than
sending them) and sends one REMB per publisher for all its video streams: for each, the lower
of the server's own estimate and the cap the router sets from the subscribers
(:func:`media.publisher_cap.publisher_cap`), summed, listing every stream's SSRC (a browser
applies a REMB to everything it sends). Sending is paced by :class:`~media.publisher_cap.RembPacer`.
A drop of the server's own estimate is followed only while the publisher's uplink loses 5 % or
more (from the server's receiver reports): aiortc's estimator also reacts to the server's own
scheduling jitter, which on a busy node would otherwise pull every publisher down.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from media.aiortc_adapter import ForwardingReceiver
from media.congestion import CongestionConfig
from media.publisher_cap import CapSmoother, CapTarget, RembPacer

Spawn = Callable[[Coroutine[Any, Any, Any]], None]


class _Stream:
    def __init__(self, config: CongestionConfig) -> None:
        self.own_bps: int | None = None
        self.ssrcs: frozenset[int] = frozenset()
        self.cap = CapSmoother(config)
        self.cap_kbps: float | None = None


class PublisherFeedback:
    """Bandwidth feedback to one publisher for all its video streams."""

    def __init__(self, config: CongestionConfig, spawn: Spawn) -> None:
        self._config = config
        self._spawn = spawn
        self._streams: dict[ForwardingReceiver, _Stream] = {}
        self._pacer = RembPacer()

    def add_stream(self, receiver: ForwardingReceiver) -> None:
        """A video stream of this publisher: the REMB its receiver would send comes here."""
        if receiver in self._streams:
            return
        self._streams[receiver] = _Stream(self._config)

        def own_estimate(bitrate_bps: int, ssrcs: list[int]) -> None:
            stream = self._streams.get(receiver)
            if stream is None:
                return
            stream.ssrcs = frozenset(ssrcs)
            # As for subscribers' REMB (media.congestion), a drop of aiortc's delay-based
            # estimate is only followed when the publisher's uplink loses packets too.
            held = stream.own_bps
            uplink_congested = receiver.uplink_loss >= self._config.uplink_congested_loss
            if held is None or bitrate_bps >= held or uplink_congested:
                stream.own_bps = bitrate_bps

        receiver.on_remb(own_estimate)

    def remove_stream(self, receiver: ForwardingReceiver) -> None:
        if self._streams.pop(receiver, None) is not None:
            receiver.on_remb(None)

    def set_cap(self, receiver: ForwardingReceiver, cap: CapTarget | None, now: float) -> None:
        """What the subscribers of this stream can take (``None``: no subscriber)."""
        stream = self._streams.get(receiver)
        if stream is not None:
            stream.cap_kbps = stream.cap.update(cap, now)

    def value_bps(self) -> int | None:
        """The REMB value to send now, ``None`` when nothing is known yet."""
        total = 0
        for stream in self._streams.values():
            limits = [v for v in (stream.own_bps, _bps(stream.cap_kbps)) if v is not None]
            if not limits:
                return None
            total += min(limits)
        return total if self._streams else None

    def tick(self, now: float) -> None:
        """Send a REMB if the value is known and the pacer allows it."""
        value = self.value_bps()
        if value is None or not self._pacer.should_send(value, now):
            return
        ssrcs = sorted({s for stream in self._streams.values() for s in stream.ssrcs})
        sender = next(
            (r for r in self._streams if r.media_ssrc is not None),
            None,
        )
        if sender is None:
            return
        if not ssrcs:
            ssrcs = sorted(r.media_ssrc for r in self._streams if r.media_ssrc is not None)
        self._pacer.sent(value, now)
        self._spawn(sender.send_remb(value, ssrcs))


def _bps(kbps: float | None) -> int | None:
    return None if kbps is None else int(kbps * 1000)
