"""REMB to a publisher: the server's own receive estimate, capped by what subscribers can take.

aiortc's receivers send REMB with the server's receive-side estimate of each incoming video
stream. :class:`PublisherFeedback` gets them instead (the receiver hands them here rather than
sending them) and sends one REMB per publisher for all its video streams: for each, the lower
of the server's own estimate and the cap the router sets from the subscribers
(:func:`media.publisher_cap.publisher_cap`), summed, listing every stream's SSRC (a browser
applies a REMB to everything it sends). Sending is paced by :class:`~media.publisher_cap.RembPacer`.
A drop of the server's own estimate is followed only while the publisher's uplink loses 5 % or
more (from the server's receiver reports): aiortc's estimator also reacts to the server's own
scheduling jitter, which on a busy node would otherwise pull every publisher down. Nor does it
go below ``aimd_backoff`` of the highest rate the stream arrived at over
``uplink_floor_window_s`` (:class:`ArrivalPeak`): on a 200 kbit/s uplink with 150 ms of delay
and 3 % loss, aiortc's estimate fell step after step to 32 kbit/s while the link carried far
more, and the kiosk's video reached the specialist at 2 frames a second. The browser's own
loss-based control still lowers its rate when the uplink really shrinks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from media.aiortc_adapter import ForwardingReceiver
from media.congestion import CongestionConfig
from media.publisher_cap import CapSmoother, CapTarget, RembPacer

Spawn = Callable[[Coroutine[Any, Any, Any]], None]


class ArrivalPeak:
    """The highest rate a stream arrived at over a window, from a byte count read each step."""

    def __init__(self, window_s: float) -> None:
        self._window_s = window_s
        self._last: tuple[int, float] | None = None
        self._rates: deque[tuple[float, float]] = deque()

    def update(self, received_bytes: int, now: float) -> None:
        last, self._last = self._last, (received_bytes, now)
        if last is None or now <= last[1]:
            return
        self._rates.append((now, 8.0 * (received_bytes - last[0]) / (now - last[1]) / 1000.0))
        while self._rates and self._rates[0][0] < now - self._window_s:
            self._rates.popleft()

    @property
    def kbps(self) -> float:
        """The peak over the window (0 before two readings)."""
        return max((kbps for _, kbps in self._rates), default=0.0)


class _Stream:
    def __init__(self, config: CongestionConfig) -> None:
        self.own_bps: int | None = None
        self.ssrcs: frozenset[int] = frozenset()
        self.cap = CapSmoother(config)
        self.cap_kbps: float | None = None
        self.arrivals = ArrivalPeak(config.uplink_floor_window_s)


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

    def set_received(self, receiver: ForwardingReceiver, received_bytes: int, now: float) -> None:
        """The stream's payload bytes received so far (read once per control step)."""
        stream = self._streams.get(receiver)
        if stream is not None:
            stream.arrivals.update(received_bytes, now)

    def value_bps(self) -> int | None:
        """The REMB value to send now, ``None`` when nothing is known yet."""
        total = 0
        for stream in self._streams.values():
            own = stream.own_bps
            if own is not None:
                own = max(own, int(self._config.aimd_backoff * stream.arrivals.kbps * 1000))
            limits = [v for v in (own, _bps(stream.cap_kbps)) if v is not None]
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
