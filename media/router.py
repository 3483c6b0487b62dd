"""``MediaRouter``: one consultation's participants and negotiation on this node.

Every participant holds one peer connection (:class:`~media.peer.MediaPeer`) and a
:class:`~media.participant.Participant` with what lives with it. Each track it publishes
(:class:`~media.subscription.PublishedTrack`) is forwarded, as encoded RTP, to one sendonly
transceiver on every other participant's connection (a :class:`~media.subscription.Subscription`).
Subscriptions are keyed by publisher track id (``"<publisher>:<source>"``) and survive the
publisher leaving, so a publisher that reconnects is picked up again without renegotiating the
others. ``MediaRegistry`` holds the routers of this node.

Congestion control runs every ``control_interval_s`` (:class:`~media.control.CongestionLoop`);
statistics go out every ``stats_interval_s`` (:mod:`media.stats`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Mapping
from typing import Any, Protocol

from media.config import MediaConfig
from media.control import CongestionLoop
from media.downlink import LinkState, SubscriberLink
from media.errors import BadSdp, NoMediaSession, RoomFull, UnknownTrack
from media.metrics import MediaMetrics
from media.participant import Participant
from media.peer import CodecPreferences, MediaPeer, OfferSummary, summarize_offer
from media.stats import ClientPath, ParticipantStats, RelayCount, StatsSampler, sample_participant
from media.subscription import PublishedTrack, RouteContext, Subscription
from media.taps import PacketTap, Source, TrackInfo
from media.upstream import PublisherFeedback

logger = logging.getLogger(__name__)

SOURCES: dict[str, Source] = {"camera": "camera", "microphone": "microphone", "screen": "screen"}
SOURCE_KINDS: dict[Source, str] = {"camera": "video", "screen": "video", "microphone": "audio"}
MAX_HELD_CANDIDATES = 32  # per participant, of an ICE generation whose offer has not come yet


class RouterSignals(Protocol):
    """How a router reaches participants (Socket.IO in production, direct calls in tests)."""

    async def send_offer(self, consultation_id: str, participant_id: str, sdp: str) -> None: ...

    async def send_tracks(
        self, consultation_id: str, participant_id: str, tracks: list[dict[str, Any]]
    ) -> None: ...

    async def send_stats(self, consultation_id: str, stats: list[ParticipantStats]) -> None: ...

    async def send_link_state(
        self, consultation_id: str, participant_id: str, state: LinkState
    ) -> None: ...


class MediaRouter:
    """Participants, publishers, subscriptions and renegotiation for one consultation here."""

    def __init__(
        self,
        consultation_id: str,
        config: MediaConfig,
        metrics: MediaMetrics,
        signals: RouterSignals,
    ) -> None:
        self.consultation_id = consultation_id
        self.config = config
        self.metrics = metrics
        self.taps: list[PacketTap] = []
        self._signals = signals
        self._codecs = CodecPreferences(config)
        self._context = RouteContext(consultation_id, config, metrics, self.taps, self.spawn)
        self._participants: dict[str, Participant] = {}
        self._tracks: dict[str, PublishedTrack] = {}
        self._muted: dict[str, bool] = {}
        # Choices and candidates that outlive one media session of a participant: audio-only
        # receive (until the participant leaves), and candidates of an ICE generation whose
        # offer has not come yet (the session they belong to does not exist yet).
        self._video_receive: dict[str, bool] = {}
        self._next_generation: dict[str, list[dict[str, Any]]] = {}
        self._congestion = CongestionLoop(
            self._context, self._participants, self._tracks, self._tell_link_state
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stats_task: asyncio.Task[None] | None = None
        self._control_task: asyncio.Task[None] | None = None
        self._closed = False

    # -- participants -------------------------------------------------------------------------

    @property
    def participant_ids(self) -> list[str]:
        return sorted(self._participants)

    def peer(self, participant_id: str) -> MediaPeer:
        return self._participant(participant_id).peer

    def _participant(self, participant_id: str) -> Participant:
        participant = self._participants.get(participant_id)
        if participant is None:
            raise NoMediaSession()
        return participant

    async def handle_offer(
        self, participant_id: str, sdp: str, sources: Mapping[str, str] | None = None
    ) -> str:
        """Answer a client offer: publish its tracks, subscribe it to everyone else's."""
        summary = summarize_offer(sdp)
        labelled = _label_sources(summary, sources or {})
        participant = self._participants.get(participant_id)
        if participant is not None and participant.peer.session_id not in (
            None,
            summary.session_id,
        ):
            logger.info(
                "new media session replaces old consultation=%s participant=%s",
                self.consultation_id,
                participant_id,
            )
            await self._drop_participant(participant_id)
            # A candidate trickled meanwhile opens the new session's peer: use it, never two.
            participant = self._participants.get(participant_id)
        if participant is None:
            participant = self._open_participant(participant_id)
        peer = participant.peer
        for candidate in self._next_generation.pop(participant_id, []):
            if candidate.get("usernameFragment") == summary.ice_ufrag:
                await peer.add_candidate(candidate)
        try:
            answer = await peer.answer(sdp)
        except BadSdp:
            if peer.session_id is None:
                await self._drop_participant(participant_id)
            raise
        self._publish(participant_id, participant, labelled)
        self._subscribe_missing()
        await self._announce_tracks()
        for other in self._participants:
            self._schedule_renegotiation(other)
        return answer

    async def handle_answer(self, participant_id: str, sdp: str) -> None:
        """Apply a client's answer to the server's offer; renegotiate again if more changed."""
        peer = self.peer(participant_id)
        await peer.accept_answer(sdp)
        self._schedule_renegotiation(participant_id)

    async def add_candidate(self, participant_id: str, candidate: dict[str, Any] | None) -> None:
        """A trickled client candidate; buffered until the offer is applied.

        A candidate whose ``usernameFragment`` is not the current session's belongs to a new ICE
        generation (an ICE restart or a new connection trickling ahead of its offer): it is held
        for the offer that brings that generation, never given to the peer it replaces.
        """
        participant = self._participants.get(participant_id)
        ufrag = candidate.get("usernameFragment") if candidate else None
        if (
            candidate
            and participant is not None
            and ufrag
            and participant.peer.ice_ufrag not in (None, ufrag)
        ):
            held = self._next_generation.setdefault(participant_id, [])
            if len(held) < MAX_HELD_CANDIDATES:
                held.append(candidate)
            return
        if participant is None:
            participant = self._open_participant(participant_id)
        await participant.peer.add_candidate(candidate)

    def set_muted(self, participant_id: str, source: str, muted: bool) -> None:
        """Record mute/camera-off so late joiners see it in ``rtc.tracks``."""
        track_id = f"{participant_id}:{source}"
        if track_id not in self._tracks:
            raise UnknownTrack(f"participant does not publish {source!r}")
        self._tracks[track_id].muted = muted
        self._muted[track_id] = muted

    def set_video_receive(self, participant_id: str, enabled: bool) -> None:
        """Audio-only receive (``False``) pauses every video forwarded to this participant."""
        participant = self._participant(participant_id)
        self._video_receive[participant_id] = enabled
        for subscription in participant.subscriptions.values():
            if subscription.kind == "video":
                subscription.set_user_paused(not enabled)
        logger.info(
            "video receive=%s consultation=%s participant=%s",
            enabled,
            self.consultation_id,
            participant_id,
        )

    def set_client_path(self, participant_id: str, path: ClientPath) -> None:
        """What the participant's browser says its selected candidate pair is (``rtc.path``).

        A relayed media session is counted once, by how the browser reaches the TURN server.
        """
        self._participant(participant_id).relay.client_reported(path)
        logger.info(
            "client path=%s/%s relay=%s consultation=%s participant=%s",
            path.candidate_type,
            path.protocol,
            path.relay_protocol or "-",
            self.consultation_id,
            participant_id,
        )

    async def remove_participant(self, participant_id: str) -> None:
        """Close a participant's peer and its subscriptions; others keep a slot for its return."""
        self._next_generation.pop(participant_id, None)
        if participant_id not in self._participants:
            return
        await self._drop_participant(participant_id)
        self._video_receive.pop(participant_id, None)
        await self._announce_tracks()

    # -- recording taps ------------------------------------------------------------------------

    def add_tap(self, tap: PacketTap) -> None:
        """``tap.on_rtp`` gets every packet of every current and future track."""
        if tap not in self.taps:
            self.taps.append(tap)

    def remove_tap(self, tap: PacketTap) -> None:
        if tap in self.taps:
            self.taps.remove(tap)

    def request_keyframes(self) -> None:
        """Ask every video publisher for a keyframe now (e.g. a recording starts)."""
        for track in self._tracks.values():
            track.request_keyframe(force=True)

    # -- lifecycle -----------------------------------------------------------------------------

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run a short job owned by this router (cancelled on close)."""
        if self._closed:
            coroutine.close()
            return
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "router job failed consultation=%s error=%r", self.consultation_id, task.exception()
            )

    async def close(self) -> None:
        """Close every peer and subscription (idempotent)."""
        if self._closed:
            return
        for participant_id in list(self._participants):
            await self._drop_participant(participant_id)
        self._closed = True
        tasks = [t for t in (*self._tasks, self._stats_task, self._control_task) if t]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        logger.info("router closed consultation=%s", self.consultation_id)

    # -- internals -----------------------------------------------------------------------------

    def _open_participant(self, participant_id: str) -> Participant:
        if len(self._participants) >= self.config.max_participants:
            raise RoomFull()
        peer = MediaPeer(self.consultation_id, participant_id, self.config, self._codecs)
        participant = Participant(
            peer=peer,
            link=SubscriberLink(
                self.config.congestion, self.metrics, self.config.keyframe_request_interval_s
            ),
            upstream=PublisherFeedback(self.config.congestion, self.spawn),
            sampler=StatsSampler(participant_id),
            relay=RelayCount(self.metrics),
        )
        self._participants[participant_id] = participant
        self.metrics.peers.inc()
        if self._stats_task is None:
            self._stats_task = asyncio.create_task(self._report_stats())
        if self._control_task is None:
            self._control_task = asyncio.create_task(self._control())

        def state_changed(state: str) -> None:
            logger.info(
                "peer state=%s consultation=%s participant=%s",
                state,
                self.consultation_id,
                participant_id,
            )

        peer.on_state_change(state_changed)
        return participant

    async def _drop_participant(self, participant_id: str) -> None:
        participant = self._participants.pop(participant_id, None)
        if participant is None:
            return
        for track_id, track in list(self._tracks.items()):
            if track.info.participant_id == participant_id:
                track.end()
                del self._tracks[track_id]
        await participant.close(self.metrics)
        self.metrics.peers.dec()

    def _publish(
        self, participant_id: str, participant: Participant, labelled: dict[str, Source]
    ) -> None:
        peer = participant.peer
        codecs = peer.answered_codecs()
        for transceiver, receiver in peer.receivers():
            source = labelled.get(str(transceiver.mid))
            if source is None:
                continue
            track_id = f"{participant_id}:{source}"
            existing = self._tracks.get(track_id)
            if existing is not None and existing.receiver is receiver:
                continue
            if existing is not None:
                existing.end()
                participant.upstream.remove_stream(existing.receiver)
            codec = codecs.get(str(transceiver.mid))
            info = TrackInfo(
                track_id=track_id,
                participant_id=participant_id,
                kind="video" if transceiver.kind == "video" else "audio",
                source=source,
                codec_mime=codec.mimeType if codec else "",
                clock_rate=codec.clockRate if codec else 0,
            )
            track = PublishedTrack(self._context, info, str(transceiver.mid), receiver)
            if info.kind == "video":
                participant.upstream.add_stream(receiver)
            track.muted = self._muted.get(track_id, False)
            self._tracks[track_id] = track
            for subscriber in self._participants.values():
                subscription = subscriber.subscriptions.get(track_id)
                if subscription is not None:
                    subscription.attach(track)
            logger.info(
                "published consultation=%s track=%s codec=%s",
                self.consultation_id,
                track_id,
                info.codec_mime,
            )

    def _subscribe_missing(self) -> None:
        for subscriber_id, subscriber in self._participants.items():
            peer = subscriber.peer
            if not peer.negotiated:
                continue
            for track_id, track in self._tracks.items():
                if (
                    track.info.participant_id == subscriber_id
                    or track_id in subscriber.subscriptions
                ):
                    continue
                transceiver, sender = peer.add_sendonly(track.info.kind, track.info.codec_mime)
                sender.set_stream(track.info.participant_id, track_id)
                subscription = Subscription(
                    self._context,
                    subscriber_id,
                    track_id,
                    track.info.kind,
                    sender,
                    transceiver,
                    subscriber.link,
                )
                if track.info.kind == "video":
                    subscription.set_user_paused(not self._video_receive.get(subscriber_id, True))
                    subscription.set_link_paused(not subscriber.link.gate.forwarding)
                subscriber.subscriptions[track_id] = subscription
                subscription.attach(track)

    def _schedule_renegotiation(self, participant_id: str) -> None:
        participant = self._participants.get(participant_id)
        if participant is None or not participant.peer.renegotiation_needed or self._closed:
            return
        running = participant.renegotiation
        if running is not None and not running.done():
            return
        participant.renegotiation = asyncio.create_task(self._renegotiate(participant_id))

    async def _renegotiate(self, participant_id: str) -> None:
        participant = self._participants.get(participant_id)
        if participant is None:
            return
        sdp = await participant.peer.create_offer()
        if sdp is None:
            return
        await self._signals.send_tracks(
            self.consultation_id, participant_id, self._tracks_for(participant)
        )
        await self._signals.send_offer(self.consultation_id, participant_id, sdp)

    def _tracks_for(self, subscriber: Participant) -> list[dict[str, Any]]:
        tracks = []
        for track_id, subscription in subscriber.subscriptions.items():
            track = self._tracks.get(track_id)
            if track is None:
                continue
            tracks.append(
                {
                    "stream_id": track.info.participant_id,
                    "track_id": track_id,
                    "participant_id": track.info.participant_id,
                    "kind": track.info.kind,
                    "source": track.info.source,
                    "mid": subscription.mid,
                    "muted": track.muted,
                }
            )
        return sorted(tracks, key=lambda t: str(t["track_id"]))

    async def _announce_tracks(self) -> None:
        for participant_id, participant in list(self._participants.items()):
            peer = participant.peer
            if peer.negotiated and not peer.renegotiation_needed:
                await self._signals.send_tracks(
                    self.consultation_id, participant_id, self._tracks_for(participant)
                )

    def _tell_link_state(self, participant_id: str, state: LinkState) -> None:
        self.spawn(self._signals.send_link_state(self.consultation_id, participant_id, state))

    async def _control(self) -> None:
        while True:
            await asyncio.sleep(self.config.control_interval_s)
            try:
                self._congestion.step(time.monotonic())
            except Exception:
                logger.exception("congestion control failed consultation=%s", self.consultation_id)

    async def _report_stats(self) -> None:
        while True:
            await asyncio.sleep(self.config.stats_interval_s)
            try:
                report = await self.collect_stats()
                if report:
                    await self._signals.send_stats(self.consultation_id, report)
            except Exception:
                logger.exception("stats failed consultation=%s", self.consultation_id)

    async def collect_stats(self) -> list[ParticipantStats]:
        """One sample per connected participant (also sent every ``stats_interval_s``)."""
        figures = []
        for participant in list(self._participants.values()):
            if not participant.peer.negotiated:
                continue
            figures.append(
                await sample_participant(
                    participant.peer,
                    participant.sampler,
                    participant.link,
                    participant.subscriptions.values(),
                    participant.relay.client_path,
                )
            )
            self.metrics.downlink_estimate_kbps.observe(participant.link.estimate_kbps)
        return figures


def _label_sources(summary: OfferSummary, sources: Mapping[str, str]) -> dict[str, Source]:
    """Map each sending mid to camera/microphone/screen; unknown mids or kinds are refused."""
    sending = {m.mid: m for m in summary.sending}
    labelled: dict[str, Source] = {}
    for mid, name in sources.items():
        media = sending.get(mid)
        if media is None:
            raise UnknownTrack(f"mid {mid!r} is not a sending media section of this offer")
        source = SOURCES.get(name)
        if source is None or SOURCE_KINDS[source] != media.kind:
            raise UnknownTrack(f"source {name!r} cannot be a {media.kind} track")
        labelled[mid] = source
    defaults: dict[str, list[Source]] = {"audio": ["microphone"], "video": ["camera", "screen"]}
    for media in summary.sending:
        if media.mid in labelled:
            continue
        free = [s for s in defaults[media.kind] if s not in labelled.values()]
        if not free:
            raise UnknownTrack(
                f"too many {media.kind} tracks: one microphone, one camera, one screen"
            )
        labelled[media.mid] = free[0]
    if len(set(labelled.values())) != len(labelled):
        raise UnknownTrack("each source may be published once")
    return labelled


class MediaRegistry:
    """All media routers of this node, one per consultation with media here."""

    def __init__(self, config: MediaConfig, metrics: MediaMetrics, signals: RouterSignals) -> None:
        self.config = config
        self.metrics = metrics
        self._signals = signals
        self._routers: dict[str, MediaRouter] = {}

    def get(self, consultation_id: str) -> MediaRouter | None:
        return self._routers.get(consultation_id)

    def router(self, consultation_id: str) -> MediaRouter:
        """The consultation's router, created on first use."""
        router = self._routers.get(consultation_id)
        if router is None:
            router = MediaRouter(consultation_id, self.config, self.metrics, self._signals)
            self._routers[consultation_id] = router
            self.metrics.routers.inc()
        return router

    async def remove_participant(self, consultation_id: str, participant_id: str) -> None:
        """Close one participant's media; the router (and its taps) stays until the end."""
        router = self._routers.get(consultation_id)
        if router is not None:
            await router.remove_participant(participant_id)

    async def close_router(self, consultation_id: str) -> None:
        router = self._routers.pop(consultation_id, None)
        if router is not None:
            await router.close()
            self.metrics.routers.dec()

    async def close(self) -> None:
        """Close every router (server shutdown)."""
        for consultation_id in list(self._routers):
            await self.close_router(consultation_id)

    def consultation_ids(self) -> list[str]:
        """The consultations whose media this process carries now."""
        return list(self._routers)

    def __len__(self) -> int:
        return len(self._routers)
