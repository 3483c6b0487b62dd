"""The congestion control step of one consultation, run every ``control_interval_s``.

Each step (1) reports what was forwarded since the last one to the node's counters, (2) updates
every subscriber's link (:meth:`~media.downlink.SubscriberLink.tick`: estimate, budget, pause
state) and pauses or resumes the video forwarded to it, telling it when that changes, then
chooses the temporal layer of each layered video track it watches
(:meth:`~media.subscription.Subscription.select_layer`, from the rates the track's layers
measured this step, :class:`~media.layer_selection.LayerRates`), (3) sets
the cap of every published video track from what its subscribers can take
(:func:`~media.publisher_cap.publisher_cap`), and (4) lets every publisher's feedback send its
REMB (:meth:`~media.upstream.PublisherFeedback.tick`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from media.downlink import LinkState, SubscriberLink
from media.layer_selection import video_floor_kbps
from media.participant import Participant
from media.pause_gate import GateState
from media.publisher_cap import CapTarget, publisher_cap
from media.subscription import PublishedTrack, RouteContext, Subscription

logger = logging.getLogger(__name__)

TellLinkState = Callable[[str, LinkState], None]


class CongestionLoop:
    """The control step over a router's participants and published tracks (both live views)."""

    def __init__(
        self,
        context: RouteContext,
        participants: Mapping[str, Participant],
        tracks: Mapping[str, PublishedTrack],
        tell: TellLinkState,
    ) -> None:
        self._context = context
        self._participants = participants
        self._tracks = tracks
        self._tell = tell

    def step(self, now: float) -> None:
        """One control step (the four parts above)."""
        for track in self._tracks.values():
            track.layer_rates.sample(now)
        congestion = self._context.config.congestion
        for participant_id, participant in list(self._participants.items()):
            watched: list[Subscription] = []
            for subscription in participant.subscriptions.values():
                subscription.report_metrics()
                if (
                    subscription.kind == "video"
                    and subscription.track is not None
                    and not subscription.user_paused
                ):
                    watched.append(subscription)
            link = participant.link
            link.video_streams = len(watched)
            link.video_floor_kbps = video_floor_kbps(
                (_base_layer_kbps(subscription) for subscription in watched), congestion
            )
            change = link.tick(now)
            if change is not None:
                self._on_gate_change(participant_id, participant, change, watched)
        for track in self._tracks.values():
            if track.info.kind != "video":
                continue
            cap = self._cap_for(track)
            self._select_layers(track, cap.voters if cap is not None else frozenset(), now)
            publisher = self._participants.get(track.info.participant_id)
            if publisher is not None:
                publisher.upstream.set_cap(track.receiver, cap, now)
        for participant in self._participants.values():
            participant.upstream.tick(now)

    def _cap_for(self, track: PublishedTrack) -> CapTarget | None:
        """Video kbit/s the track's subscribers can take (``None``: no subscriber to serve)."""
        watching = [s for s in track.subscriptions if not s.user_paused]
        if not watching:
            return None
        congestion = self._context.config.congestion
        links: dict[str, SubscriberLink] = {}
        for subscription in watching:
            subscriber = self._participants.get(subscription.subscriber_id)
            if not subscription.link_paused and subscriber is not None:
                links[subscription.subscriber_id] = subscriber.link
        shares = {
            subscriber_id: share
            for subscriber_id, link in links.items()
            if (share := link.publisher_share_kbps) is not None
        }
        if shares:
            return publisher_cap(shares, congestion, _base_fraction(track))
        # None qualifies: what the best of them can take (a starting guess, or a link near the
        # floor); with everyone paused, the lowest rate keeps probes cheap to serve.
        guess = max((link.video_share_kbps for link in links.values()), default=0.0)
        kbps = max(congestion.video_min_kbps, congestion.publisher_headroom * guess)
        return CapTarget(kbps, frozenset())

    def _select_layers(self, track: PublishedTrack, voters: frozenset[str], now: float) -> None:
        """The temporal layer of each subscriber of ``track``: every layer for those whose
        share sets the publisher's cap (the publisher follows them) or whose link is not
        budgeted; by its share for the others (served by a lower layer)."""
        for subscription in track.subscriptions:
            subscriber = self._participants.get(subscription.subscriber_id)
            if subscriber is None:
                continue
            link = subscriber.link
            served_by_layers = (
                link.estimator.constrained and subscription.subscriber_id not in voters
            )
            subscription.select_layer(link.video_share_kbps if served_by_layers else None, now)

    def _on_gate_change(
        self,
        subscriber_id: str,
        subscriber: Participant,
        state: GateState,
        watched: list[Subscription],
    ) -> None:
        metrics = self._context.metrics
        link = subscriber.link
        metrics.video_pause_changes.labels(state.value).inc()
        for subscription in watched:
            subscription.set_link_paused(not link.gate.forwarding)
        logger.info(
            "downlink video=%s consultation=%s participant=%s estimate_kbps=%.0f",
            state.value,
            self._context.consultation_id,
            subscriber_id,
            link.estimate_kbps,
        )
        paused = link.gate.video_paused
        if subscriber.told_video_paused == paused:
            return
        subscriber.told_video_paused = paused
        metrics.video_paused_subscribers.inc(1 if paused else -1)
        self._tell(subscriber_id, link.state())


def _base_fraction(track: PublishedTrack) -> float | None:
    """The base layer's part of a layered track's rate (``None``: no layers, nothing measured)."""
    rates = track.layer_rates
    base, top = rates.base_kbps, rates.top_layer
    if base is None or top is None:
        return None
    total = rates.cumulative_kbps(top)
    return base / total if total > 0 else None


def _base_layer_kbps(subscription: Subscription) -> float | None:
    """The base layer rate of the track a subscription watches (``None``: it has no layers)."""
    track = subscription.track
    return None if track is None else track.layer_rates.base_kbps
