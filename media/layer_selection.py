"""Which temporal layer each subscriber of a layered VP8 track gets, from its budget.

:class:`LayerRates` measures what each temporal layer of a published track carries, from the
packets that arrive (payload bytes per TID, smoothed over ``layer_rate_window_s``; keyframes
left out, as the send budget leaves them out: a keyframe asked for by a joining subscriber must
not take layers from everyone). :class:`LayerSelector` picks, per subscription, the highest
layer whose rate (with every layer below it) fits the subscriber's video share: down at once
when the current one no longer fits (the send budget would otherwise drop whole frames, and a
dropped frame waits for a keyframe), up only after a higher one has fitted with
``layer_up_headroom`` to spare for ``layer_up_hold_s``. Pausing stays the pause gate's
(:mod:`media.pause_gate`) decision, which for layered video waits until even the base layer
does not fit (:func:`video_floor_kbps`).

Pure logic with the clock passed in, like :mod:`media.congestion`; the layer is carried out by
:class:`~media.layer_rewriter.LayerRewriter` at the next frame where a decoder can follow.
"""

from __future__ import annotations

from collections.abc import Iterable

from media.congestion import CongestionConfig
from media.layer_rewriter import MAX_LAYER

_LAYERS = MAX_LAYER + 1


class LayerRates:
    """The kbit/s each temporal layer of one track carries, and the highest layer it sends."""

    def __init__(self, window_s: float) -> None:
        self._window_s = window_s
        self._bytes = [0] * _LAYERS
        self._kbps = [0.0] * _LAYERS
        self._seen_at: list[float | None] = [None] * _LAYERS
        self._sampled_at: float | None = None
        self.top_layer: int | None = None

    def on_packet(self, layer: int, size: int) -> None:
        """A packet of ``layer`` with ``size`` payload bytes arrived (per packet: integers only)."""
        self._bytes[layer] += size

    def sample(self, now: float) -> None:
        """Fold what arrived since the last sample into the rates (once per control step)."""
        previous, self._sampled_at = self._sampled_at, now
        if previous is None or now <= previous:
            self._bytes = [0] * _LAYERS
            return
        elapsed = now - previous
        weight = min(1.0, elapsed / self._window_s)
        for layer in range(_LAYERS):
            size = self._bytes[layer]
            kbps = 8.0 * size / elapsed / 1000.0
            if size and self._seen_at[layer] is None:
                self._kbps[layer] = kbps  # a layer's first figure: not averaged with nothing
            else:
                self._kbps[layer] += weight * (kbps - self._kbps[layer])
            if size:
                self._seen_at[layer] = now
            self._bytes[layer] = 0
        recent = [
            layer
            for layer, seen in enumerate(self._seen_at)
            if seen is not None and now - seen <= self._window_s
        ]
        self.top_layer = max(recent) if recent else None

    def cumulative_kbps(self, layer: int) -> float:
        """What a subscriber of ``layer`` receives: that layer and every one below it."""
        return sum(self._kbps[: layer + 1])

    @property
    def base_kbps(self) -> float | None:
        """The base layer's rate (``None``: the track sends no layers)."""
        return None if self.top_layer is None else self._kbps[0]


class LayerSelector:
    """The target layer of one subscription, with hysteresis."""

    def __init__(self, config: CongestionConfig) -> None:
        self._config = config
        self.target = MAX_LAYER
        self._up_since: float | None = None

    def update(self, share_kbps: float | None, rates: LayerRates, now: float) -> int:
        """The target for a video share of ``share_kbps`` (``None``: not budgeted, every layer
        goes; see :attr:`~media.congestion.DownlinkEstimator.constrained`)."""
        top = rates.top_layer
        if top is None or share_kbps is None:
            self.target = MAX_LAYER
            self._up_since = None
            return self.target
        current = min(self.target, top)
        fitting = _highest_fitting(rates, top, share_kbps)
        if fitting < current:
            self.target = fitting
            self._up_since = None
            return self.target
        roomy = _highest_fitting(rates, top, share_kbps / self._config.layer_up_headroom)
        if roomy <= current:
            self.target = current
            self._up_since = None
        elif self._up_since is None:
            self._up_since = now
        elif now - self._up_since >= self._config.layer_up_hold_s:
            self.target = roomy
            self._up_since = None
        return self.target


def _highest_fitting(rates: LayerRates, top: int, kbps: float) -> int:
    """The highest layer up to ``top`` whose cumulative rate is within ``kbps`` (at least 0)."""
    return max(
        (layer for layer in range(top + 1) if rates.cumulative_kbps(layer) <= kbps), default=0
    )


def video_floor_kbps(base_layers_kbps: Iterable[float | None], config: CongestionConfig) -> float:
    """The video room below which a subscriber's video pauses, given the base layer rate of each
    video stream it watches (``None``: a stream without layers).

    The lowest video rate, as without layers; lower when every stream is layered and their
    base layers together need less: such a subscriber gets fewer frames instead of a pause.
    """
    total = 0.0
    for kbps in base_layers_kbps:
        if kbps is None:
            return config.video_min_kbps
        total += kbps
    return min(config.video_min_kbps, total)
