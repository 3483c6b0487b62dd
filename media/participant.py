"""Everything a consultation's router keeps for one participant's media session, in one place."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from media.downlink import SubscriberLink
from media.metrics import MediaMetrics
from media.peer import MediaPeer
from media.stats import RelayCount, StatsSampler
from media.subscription import Subscription
from media.upstream import PublisherFeedback


@dataclass
class Participant:
    """One participant's peer connection with the server and the state that lives with it.

    Made when the session opens and dropped, with all it holds, when it closes: its downlink
    (:class:`~media.downlink.SubscriberLink`), the REMB it gets as a publisher
    (:class:`~media.upstream.PublisherFeedback`), its statistics, its subscriptions to other
    participants' tracks (by publisher track id), whether it was last told its video is paused,
    and the renegotiation that may be running.
    """

    peer: MediaPeer
    link: SubscriberLink
    upstream: PublisherFeedback
    sampler: StatsSampler
    relay: RelayCount
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    told_video_paused: bool = False
    renegotiation: asyncio.Task[None] | None = None

    async def close(self, metrics: MediaMetrics) -> None:
        """Close its subscriptions, its downlink and its peer connection."""
        self.relay.session_closed(self.peer.selected_path())
        await self.link.close()
        if self.told_video_paused:
            metrics.video_paused_subscribers.dec()
        task = self.renegotiation
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for subscription in self.subscriptions.values():
            subscription.close()
        self.subscriptions.clear()
        await self.peer.close()
