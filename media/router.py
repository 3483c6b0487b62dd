"""``MediaRouter``: one consultation's publishers and subscriptions on this node.

Every participant holds one peer connection (:class:`~media.peer.MediaPeer`). Each track it
publishes is forwarded, as encoded RTP, to one sendonly transceiver on every other participant's
connection. Subscriber slots are keyed by ``(subscriber, "<publisher>:<source>")`` and survive the
publisher leaving, so a publisher that reconnects is picked up again without renegotiating the
others. ``MediaRegistry`` holds the routers of this node.

Congestion control (:mod:`media.congestion`): each participant's downlink is a
:class:`~media.downlink.SubscriberLink` that meters and budgets what is forwarded to it, and
each publisher's REMB (:class:`~media.upstream.PublisherFeedback`) asks for no more than its
subscribers can take. A control loop every ``control_interval_s`` updates both, pauses video to a
subscriber whose link is too weak for it and tells that subscriber (``rtc.link_state``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket
from aiortc.sdp import SessionDescription

from media.config import MediaConfig
from media.congestion import CapTarget, GateState, publisher_cap
from media.downlink import DownlinkFeedback, LinkState, SubscriberLink
from media.errors import BadSdp, NoMediaSession, RoomFull, UnknownTrack
from media.forwarding import ForwardingReceiver, ForwardingSender, codec_data
from media.ice import selected_path
from media.keyframes import starts_keyframe
from media.metrics import MediaMetrics
from media.peer import CodecPreferences, MediaPeer, OfferSummary, summarize_offer
from media.rtp_rewriter import RtpRewriter
from media.stats import ClientPath, DownlinkFigures, ParticipantStats, StatsSampler
from media.taps import PacketTap, TrackInfo
from media.transcode import RelayedTrack, TranscodeSource
from media.upstream import PublisherFeedback

logger = logging.getLogger(__name__)

Source = Literal["camera", "microphone", "screen"]
SOURCE_KINDS: dict[str, str] = {"camera": "video", "screen": "video", "microphone": "audio"}
_RTP_HEADER_BYTES = 24  # fixed header and the extensions the server adds
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


class PublishedTrack:
    """One track a participant sends to the server."""

    def __init__(
        self, router: MediaRouter, info: TrackInfo, mid: str, receiver: ForwardingReceiver
    ) -> None:
        self.info = info
        self.mid = mid
        self.receiver = receiver
        self.muted = False
        self.subscriptions: list[Subscription] = []
        self._router = router
        self._transcoder: TranscodeSource | None = None
        self._last_keyframe_request = 0.0
        self._ended = False
        receiver.set_sink(self._on_packet)

    async def _on_packet(self, packet: RtpPacket) -> None:
        codec = self.receiver.codec_for(packet.payload_type)
        if codec is None or self._ended:
            return
        taps = self._router.taps
        if taps or self._transcoder is not None:
            payload = codec_data(packet, codec)
            if payload is None:
                return  # a payload the codec's parser refuses (aiortc's own path drops it too)
            self._tap(taps, packet, payload)
        keyframe = starts_keyframe(codec.mimeType, packet.payload)
        if self._transcoder is not None and self._transcoder.feed(packet, keyframe):
            self.request_keyframe()
        if not self.subscriptions:
            return
        for subscription in self.subscriptions:
            await subscription.forward(packet, codec, keyframe)

    def _tap(self, taps: Sequence[PacketTap], packet: RtpPacket, payload: bytes) -> None:
        """Hand one packet and its codec data to each tap (a recorder); a failing tap is logged."""
        for tap in taps:
            try:
                tap.on_rtp(self.info, packet, payload)
            except Exception:
                logger.exception(
                    "tap failed consultation=%s track=%s",
                    self._router.consultation_id,
                    self.info.track_id,
                )

    def request_keyframe(self, force: bool = False) -> None:
        """Ask the publisher for a keyframe (PLI), at most once per throttle interval."""
        if self.info.kind != "video" or self._ended:
            return
        now = time.monotonic()
        if (
            not force
            and now - self._last_keyframe_request < self._router.config.keyframe_request_interval_s
        ):
            return
        self._last_keyframe_request = now
        self._router.metrics.keyframe_requests.inc()
        self._router.spawn(self.receiver.request_keyframe())

    def transcoder(self, codec: RTCRtpCodecParameters) -> TranscodeSource:
        if self._transcoder is None:
            self._transcoder = TranscodeSource(self.info.track_id, self.info.kind, codec)
            self.request_keyframe(force=True)
        return self._transcoder

    def release_transcoder(self, output: RelayedTrack) -> None:
        if self._transcoder is None:
            return
        self._transcoder.unsubscribe(output)
        if self._transcoder.idle:
            self._transcoder.close()
            self._transcoder = None

    def end(self) -> None:
        """The publisher left or stopped sending this track."""
        if self._ended:
            return
        self._ended = True
        self.receiver.set_sink(None)
        for subscription in list(self.subscriptions):
            subscription.detach()
        if self._transcoder is not None:
            self._transcoder.close()
            self._transcoder = None
        for tap in self._router.taps:
            try:
                tap.on_track_ended(self.info)
            except Exception:
                logger.exception(
                    "tap failed consultation=%s track=%s",
                    self._router.consultation_id,
                    self.info.track_id,
                )


@dataclass
class Subscription:
    """One publisher track forwarded to one subscriber, with its own RTP numbering."""

    router: MediaRouter
    subscriber_id: str
    track_id: str
    kind: str
    sender: ForwardingSender
    transceiver: Any
    link: SubscriberLink
    track: PublishedTrack | None = None
    paused: bool = False
    needs_keyframe: bool = True
    user_paused: bool = False
    link_paused: bool = False
    _keyframe_asked: bool = False
    _keyframe_asked_at: float = 0.0
    _pli_passed_at: float = 0.0
    _frame_timestamp: int | None = None
    _resync: bool = False
    _feedback: DownlinkFeedback | None = field(default=None, repr=False)
    _dropping_frame: bool = False
    _keyframe_frame: bool = False
    _numbers: RtpRewriter = field(default_factory=RtpRewriter, repr=False)
    _relayed: RelayedTrack | None = field(default=None, repr=False)
    _unreported_packets: int = field(default=0, repr=False)
    _unreported_bytes: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        self.sender.on_keyframe_request(self._on_subscriber_pli)
        self.sender.on_start(self._on_sender_started)
        self._feedback = self.link.sender_feedback(self.kind, self._packet_lost)
        self.sender.set_feedback(self._feedback)

    @property
    def mid(self) -> str | None:
        return str(self.transceiver.mid) if self.transceiver.mid is not None else None

    def attach(self, track: PublishedTrack) -> None:
        self.detach()
        self.track = track
        self.needs_keyframe = True
        self._keyframe_asked = False
        track.subscriptions.append(self)

    def detach(self) -> None:
        track, self.track = self.track, None
        if track is None:
            return
        if self in track.subscriptions:
            track.subscriptions.remove(self)
        if self._relayed is not None:
            track.release_transcoder(self._relayed)

    def set_user_paused(self, paused: bool) -> None:
        """Audio-only receive chosen by the participant (``rtc.receive_mode``)."""
        self.user_paused = paused
        self._set_paused(self.user_paused or self.link_paused)

    def set_link_paused(self, paused: bool) -> None:
        """Video paused by the server for a weak connection."""
        self.link_paused = paused
        self._set_paused(self.user_paused or self.link_paused)

    def _set_paused(self, paused: bool) -> None:
        if paused == self.paused:
            return
        self.paused = paused
        if self._relayed is not None:
            self._relayed.paused = paused
        if not paused:
            self.needs_keyframe = True
            self._keyframe_asked = False

    def _on_subscriber_pli(self) -> None:
        if self.track is None:
            return
        now = time.monotonic()
        if now - self._pli_passed_at < self.link.keyframe_interval_s:
            self.router.metrics.keyframe_requests_throttled.inc()
            return
        self._pli_passed_at = now
        self.track.request_keyframe()

    def _on_sender_started(self) -> None:
        """Ask for the keyframe this subscription starts at as soon as it can be forwarded.

        Waiting for the publisher's next packet instead would time the request just after
        the publisher sent a frame, a whole frame interval before its encoder can answer.
        """
        track = self.track
        if (
            self.kind == "video"
            and self.needs_keyframe
            and not self.paused
            and track is not None
            and track.receiver.media_ssrc is not None
        ):
            self._ask_keyframe()

    def _ask_keyframe(self) -> None:
        """Ask for the keyframe this subscription waits for (throttled by its link's health)."""
        if self.track is None:
            return
        now = time.monotonic()
        if self._keyframe_asked and now - self._keyframe_asked_at < self.link.keyframe_interval_s:
            return
        # The first request of a subscription that just became ready skips the track's
        # throttle: it is what makes a joiner's video start within one round trip.
        self.track.request_keyframe(force=not self._keyframe_asked)
        self._keyframe_asked = True
        self._keyframe_asked_at = now

    def _packet_lost(self) -> None:
        """A packet the subscriber missed will not be resent: restart it at a keyframe.

        The restart skips :data:`~media.rtp_rewriter.RESYNC_GAP` sequence numbers.
        """
        if self.kind != "video" or self._resync:
            return
        self._resync = True
        self.needs_keyframe = True
        self._ask_keyframe()

    def _frame_dropped(self, packet: RtpPacket, keyframe: bool) -> bool:
        """Whether this video packet belongs to a frame the send budget has no room for."""
        if packet.timestamp != self._frame_timestamp:
            self._frame_timestamp = packet.timestamp
            self._keyframe_frame = keyframe
            self._dropping_frame = not self.link.video_frame_allowed()
            if keyframe and not self._dropping_frame:
                self.link.keyframe_started()
            if self._dropping_frame:
                # VP8 cannot decode past a skipped frame: resume at a keyframe.
                self.needs_keyframe = True
                self._ask_keyframe()
        return self._dropping_frame

    async def forward(
        self, packet: RtpPacket, codec: RTCRtpCodecParameters, keyframe: bool
    ) -> None:
        sender_codec = self.sender.codec
        if sender_codec is None or sender_codec.payloadType is None or self.paused:
            return
        if self._relayed is not None:
            if self.track is not None:
                self.track.transcoder(codec).subscribe(self._relayed)
            return
        if (
            self.router.config.force_transcode
            or sender_codec.mimeType.lower() != codec.mimeType.lower()
        ):
            self._start_transcoding(codec)
            return
        if self.kind == "video" and self._frame_dropped(packet, keyframe):
            return
        if self.needs_keyframe:
            if not keyframe:
                self._ask_keyframe()
                return
            self._restart(packet, codec.clockRate)
        numbers = self._numbers.rewrite(packet.sequence_number, packet.timestamp)
        if numbers is None:
            return  # from before this subscription (re)started: the subscriber never saw its frame
        if self.kind == "video":
            send = functools.partial(
                self.sender.send_forwarded,
                packet,
                sender_codec.payloadType,
                numbers.sequence,
                numbers.timestamp,
            )
            size = len(packet.payload) + _RTP_HEADER_BYTES
            await self.link.send_video(size, send, keyframe=self._keyframe_frame)
        else:
            await self.sender.send_forwarded(
                packet, sender_codec.payloadType, numbers.sequence, numbers.timestamp
            )
        self._unreported_packets += 1
        self._unreported_bytes += len(packet.payload)

    def report_metrics(self) -> None:
        """Add what was forwarded since the last call to the node's counters.

        Counted per packet in plain integers and reported in batches (each control step):
        a Prometheus counter update costs a lock and, by label, a dictionary lookup.
        """
        if not self._unreported_packets:
            return
        metrics = self.router.metrics
        metrics.forwarded_packets.labels(self.kind).inc(self._unreported_packets)
        metrics.forwarded_bytes.labels(self.kind).inc(self._unreported_bytes)
        self._unreported_packets = self._unreported_bytes = 0

    def _restart(self, packet: RtpPacket, clock_rate: int) -> None:
        """Continue this subscriber's stream from ``packet`` (start, rejoin, resume)."""
        skips_gap = self._resync and self._numbers.last_sent is not None
        resumes_at = self._numbers.rebase(
            packet.sequence_number, packet.timestamp, clock_rate, self._resync
        )
        if skips_gap and self._feedback is not None:
            self._feedback.skip_gap(resumes_at)
        self._resync = False
        self.needs_keyframe = False
        logger.info(
            "subscription started consultation=%s subscriber=%s track=%s",
            self.router.consultation_id,
            self.subscriber_id,
            self.track_id,
        )

    def _start_transcoding(self, codec: RTCRtpCodecParameters) -> None:
        if self.track is None or self._relayed is not None:
            return
        self._relayed = RelayedTrack(self.kind)
        self._relayed.paused = self.paused
        self.track.transcoder(codec).subscribe(self._relayed)
        self.sender.start_transcoding(self._relayed)
        self.router.metrics.transcoding_subscriptions.labels(self.kind).inc()
        self.router.metrics.transcoding_active.inc()
        log = logger.info if self.router.config.force_transcode else logger.warning
        log(
            "transcoding fallback consultation=%s subscriber=%s track=%s from=%s to=%s",
            self.router.consultation_id,
            self.subscriber_id,
            self.track_id,
            codec.mimeType,
            self.sender.codec.mimeType if self.sender.codec else "-",
        )

    def close(self) -> None:
        self.report_metrics()
        self.detach()
        if self._relayed is not None:
            self._relayed.end()
            self.router.metrics.transcoding_active.dec()
        self.sender.on_keyframe_request(None)
        self.sender.on_start(None)


class MediaRouter:
    """Publishers, subscriptions and renegotiation for one consultation on this node."""

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
        self._peers: dict[str, MediaPeer] = {}
        self._tracks: dict[str, PublishedTrack] = {}
        self._slots: dict[tuple[str, str], Subscription] = {}
        self._muted: dict[str, bool] = {}
        self._video_receive: dict[str, bool] = {}
        self._samplers: dict[str, StatsSampler] = {}
        self._links: dict[str, SubscriberLink] = {}
        self._upstream: dict[str, PublisherFeedback] = {}
        self._reported: dict[str, bool] = {}
        self._renegotiating: dict[str, asyncio.Task[None]] = {}
        self._next_generation: dict[str, list[dict[str, Any]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stats_task: asyncio.Task[None] | None = None
        self._control_task: asyncio.Task[None] | None = None
        self._closed = False

    # -- participants -------------------------------------------------------------------------

    @property
    def participant_ids(self) -> list[str]:
        return sorted(self._peers)

    def peer(self, participant_id: str) -> MediaPeer:
        peer = self._peers.get(participant_id)
        if peer is None:
            raise NoMediaSession()
        return peer

    async def handle_offer(
        self, participant_id: str, sdp: str, sources: Mapping[str, str] | None = None
    ) -> str:
        """Answer a client offer: publish its tracks, subscribe it to everyone else's."""
        summary = summarize_offer(sdp)
        labelled = _label_sources(summary, sources or {})
        peer = self._peers.get(participant_id)
        if peer is not None and peer.session_id not in (None, summary.session_id):
            logger.info(
                "new media session replaces old consultation=%s participant=%s",
                self.consultation_id,
                participant_id,
            )
            await self._drop_peer(participant_id)
            # A candidate trickled meanwhile opens the new session's peer: use it, never two.
            peer = self._peers.get(participant_id)
        if peer is None:
            peer = self._open_peer(participant_id)
        for candidate in self._next_generation.pop(participant_id, []):
            if candidate.get("usernameFragment") == summary.ice_ufrag:
                await peer.add_candidate(candidate)
        try:
            answer = await peer.answer(sdp)
        except BadSdp:
            if peer.session_id is None:
                await self._drop_peer(participant_id)
            raise
        self._publish(participant_id, peer, labelled)
        self._subscribe_missing()
        await self._announce_tracks()
        for other in self._peers:
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
        peer = self._peers.get(participant_id)
        ufrag = candidate.get("usernameFragment") if candidate else None
        if candidate and peer is not None and ufrag and peer.ice_ufrag not in (None, ufrag):
            held = self._next_generation.setdefault(participant_id, [])
            if len(held) < MAX_HELD_CANDIDATES:
                held.append(candidate)
            return
        if peer is None:
            peer = self._open_peer(participant_id)
        await peer.add_candidate(candidate)

    def set_muted(self, participant_id: str, source: str, muted: bool) -> None:
        """Record mute/camera-off so late joiners see it in ``rtc.tracks``."""
        track_id = f"{participant_id}:{source}"
        if track_id not in self._tracks:
            raise UnknownTrack(f"participant does not publish {source!r}")
        self._tracks[track_id].muted = muted
        self._muted[track_id] = muted

    def set_video_receive(self, participant_id: str, enabled: bool) -> None:
        """Audio-only receive (``False``) pauses every video forwarded to this participant."""
        self.peer(participant_id)
        self._video_receive[participant_id] = enabled
        for (subscriber, _), subscription in self._slots.items():
            if subscriber == participant_id and subscription.kind == "video":
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
        peer = self.peer(participant_id)
        peer.client_path = path
        if path.relayed and not peer.relay_counted:
            peer.relay_counted = True
            self.metrics.relayed_sessions.labels(path.relay_protocol or "unknown").inc()
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
        if participant_id not in self._peers:
            return
        await self._drop_peer(participant_id)
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
        for participant_id in list(self._peers):
            await self._drop_peer(participant_id)
        self._closed = True
        tasks = [
            t
            for t in (
                *self._tasks,
                *self._renegotiating.values(),
                self._stats_task,
                self._control_task,
            )
            if t
        ]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._renegotiating.clear()
        for subscription in self._slots.values():
            subscription.close()
        self._slots.clear()
        logger.info("router closed consultation=%s", self.consultation_id)

    # -- internals -----------------------------------------------------------------------------

    def _open_peer(self, participant_id: str) -> MediaPeer:
        if len(self._peers) >= self.config.max_participants:
            raise RoomFull()
        peer = MediaPeer(self.consultation_id, participant_id, self.config, self._codecs)
        self._peers[participant_id] = peer
        self._samplers[participant_id] = StatsSampler(participant_id)
        self._links[participant_id] = SubscriberLink(
            self.config.congestion, self.metrics, self.config.keyframe_request_interval_s
        )
        self._upstream[participant_id] = PublisherFeedback(self.config.congestion, self.spawn)
        self.metrics.peers.inc()
        if self._stats_task is None:
            self._stats_task = asyncio.create_task(self._report_stats())
        if self._control_task is None:
            self._control_task = asyncio.create_task(self._control())

        @peer.pc.on("connectionstatechange")
        def _state_changed() -> None:
            logger.info(
                "peer state=%s consultation=%s participant=%s",
                peer.connection_state,
                self.consultation_id,
                participant_id,
            )

        return peer

    def _count_unreported_relay(self, peer: MediaPeer) -> None:
        """A session the server saw relayed whose client never reported its path still counts."""
        path = selected_path(peer.pc)
        if path is not None and path.remote_type == "relay" and not peer.relay_counted:
            peer.relay_counted = True
            self.metrics.relayed_sessions.labels("unreported").inc()

    async def _drop_peer(self, participant_id: str) -> None:
        peer = self._peers.pop(participant_id, None)
        if peer is None:
            return
        self._count_unreported_relay(peer)
        self._samplers.pop(participant_id, None)
        link = self._links.pop(participant_id, None)
        if link is not None:
            await link.close()
        self._upstream.pop(participant_id, None)
        if self._reported.pop(participant_id, False):
            self.metrics.video_paused_subscribers.dec()
        task = self._renegotiating.pop(participant_id, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for track_id, track in list(self._tracks.items()):
            if track.info.participant_id == participant_id:
                track.end()
                del self._tracks[track_id]
        for key, subscription in list(self._slots.items()):
            if key[0] == participant_id:
                subscription.close()
                del self._slots[key]
        await peer.close()
        self.metrics.peers.dec()

    def _publish(self, participant_id: str, peer: MediaPeer, labelled: dict[str, str]) -> None:
        codecs = _answered_codecs(peer)
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
                self._upstream[participant_id].forget(existing.receiver)
            codec = codecs.get(str(transceiver.mid))
            info = TrackInfo(
                track_id=track_id,
                participant_id=participant_id,
                kind="video" if transceiver.kind == "video" else "audio",
                source=source,  # type: ignore[arg-type]
                codec_mime=codec.mimeType if codec else "",
                clock_rate=codec.clockRate if codec else 0,
            )
            track = PublishedTrack(self, info, str(transceiver.mid), receiver)
            if info.kind == "video":
                self._upstream[participant_id].adopt(receiver)
            track.muted = self._muted.get(track_id, False)
            self._tracks[track_id] = track
            for (_, slot_track), subscription in self._slots.items():
                if slot_track == track_id:
                    subscription.attach(track)
            logger.info(
                "published consultation=%s track=%s codec=%s",
                self.consultation_id,
                track_id,
                info.codec_mime,
            )

    def _subscribe_missing(self) -> None:
        for subscriber_id, peer in self._peers.items():
            if peer.pc.remoteDescription is None:
                continue
            for track_id, track in self._tracks.items():
                if (
                    track.info.participant_id == subscriber_id
                    or (subscriber_id, track_id) in self._slots
                ):
                    continue
                transceiver, sender = peer.add_sendonly(track.info.kind, track.info.codec_mime)
                sender.set_stream(track.info.participant_id, track_id)
                subscription = Subscription(
                    self,
                    subscriber_id,
                    track_id,
                    track.info.kind,
                    sender,
                    transceiver,
                    self._links[subscriber_id],
                )
                link = self._links[subscriber_id]
                subscription.user_paused = track.info.kind == "video" and not (
                    self._video_receive.get(subscriber_id, True)
                )
                subscription.link_paused = track.info.kind == "video" and not link.gate.forwarding
                subscription.paused = subscription.user_paused or subscription.link_paused
                self._slots[(subscriber_id, track_id)] = subscription
                subscription.attach(track)

    def _schedule_renegotiation(self, participant_id: str) -> None:
        peer = self._peers.get(participant_id)
        if peer is None or not peer.renegotiation_needed or self._closed:
            return
        running = self._renegotiating.get(participant_id)
        if running is not None and not running.done():
            return
        self._renegotiating[participant_id] = asyncio.create_task(self._renegotiate(participant_id))

    async def _renegotiate(self, participant_id: str) -> None:
        peer = self._peers.get(participant_id)
        if peer is None:
            return
        sdp = await peer.create_offer()
        if sdp is None:
            return
        await self._signals.send_tracks(
            self.consultation_id, participant_id, self._tracks_for(participant_id)
        )
        await self._signals.send_offer(self.consultation_id, participant_id, sdp)

    def _tracks_for(self, subscriber_id: str) -> list[dict[str, Any]]:
        tracks = []
        for (subscriber, track_id), subscription in self._slots.items():
            track = self._tracks.get(track_id)
            if subscriber != subscriber_id or track is None:
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
        for participant_id, peer in list(self._peers.items()):
            if peer.pc.remoteDescription is not None and not peer.renegotiation_needed:
                await self._signals.send_tracks(
                    self.consultation_id, participant_id, self._tracks_for(participant_id)
                )

    async def _control(self) -> None:
        while True:
            await asyncio.sleep(self.config.control_interval_s)
            try:
                await self.control_step(time.monotonic())
            except Exception:
                logger.exception("congestion control failed consultation=%s", self.consultation_id)

    async def control_step(self, now: float) -> None:
        """Report forwarded packets; update every subscriber's link and pause state, then every
        publisher's REMB."""
        video_slots: dict[str, list[Subscription]] = {}
        for (subscriber_id, _), subscription in self._slots.items():
            subscription.report_metrics()
            if subscription.kind == "video" and subscription.track is not None:
                video_slots.setdefault(subscriber_id, []).append(subscription)
        for subscriber_id, link in list(self._links.items()):
            slots = [s for s in video_slots.get(subscriber_id, []) if not s.user_paused]
            link.video_streams = len(slots)
            change = link.tick(now)
            if change is not None:
                self._on_gate_change(subscriber_id, link, change, slots)
        for track in self._tracks.values():
            if track.info.kind != "video":
                continue
            publisher = self._upstream.get(track.info.participant_id)
            if publisher is None:
                continue
            publisher.set_cap(track.receiver, self._cap_for(track), now)
        for publisher in self._upstream.values():
            publisher.tick(now)

    def _cap_for(self, track: PublishedTrack) -> CapTarget | None:
        """Video kbit/s the track's subscribers can take (``None``: no subscriber to serve)."""
        watching = [s for s in track.subscriptions if not s.user_paused]
        if not watching:
            return None
        congestion = self.config.congestion
        links = {
            s.subscriber_id: link
            for s in watching
            if not s.link_paused and (link := self._links.get(s.subscriber_id)) is not None
        }
        shares = {
            subscriber_id: share
            for subscriber_id, link in links.items()
            if (share := link.publisher_share_kbps) is not None
        }
        if shares:
            return publisher_cap(shares, congestion)
        # None qualifies: what the best of them can take (a starting guess, or a link near the
        # floor); with everyone paused, the lowest rate keeps probes cheap to serve.
        guess = max((link.video_share_kbps for link in links.values()), default=0.0)
        kbps = max(congestion.video_min_kbps, congestion.publisher_headroom * guess)
        return CapTarget(kbps, frozenset())

    def _on_gate_change(
        self,
        subscriber_id: str,
        link: SubscriberLink,
        state: GateState,
        slots: list[Subscription],
    ) -> None:
        self.metrics.video_pause_changes.labels(state.value).inc()
        for subscription in slots:
            subscription.set_link_paused(not link.gate.forwarding)
        logger.info(
            "downlink video=%s consultation=%s participant=%s estimate_kbps=%.0f",
            state.value,
            self.consultation_id,
            subscriber_id,
            link.estimate_kbps,
        )
        paused = link.gate.video_paused
        if self._reported.get(subscriber_id, False) == paused:
            return
        self._reported[subscriber_id] = paused
        self.metrics.video_paused_subscribers.inc(1 if paused else -1)
        self.spawn(self._signals.send_link_state(self.consultation_id, subscriber_id, link.state()))

    def link_state(self, participant_id: str) -> LinkState:
        """The video state of a participant's downlink, as last reported to it."""
        link = self._links.get(participant_id)
        if link is None:
            raise NoMediaSession()
        return link.state()

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
        for participant_id, peer in list(self._peers.items()):
            sampler = self._samplers.get(participant_id)
            if sampler is None or peer.pc.remoteDescription is None:
                continue
            report = await peer.pc.getStats()
            estimates = [
                s.sender.remb_bps
                for (sub, _), s in self._slots.items()
                if sub == participant_id and s.sender.remb_bps
            ]
            link = self._links.get(participant_id)
            if link is None:
                continue
            forwarding = any(
                s.kind == "video" and s.track is not None and not s.paused
                for (sub, _), s in self._slots.items()
                if sub == participant_id
            )
            self.metrics.downlink_estimate_kbps.observe(link.estimate_kbps)
            figures.append(
                sampler.sample(
                    dict(report),
                    [int(e) for e in estimates if e],
                    selected_path(peer.pc),
                    peer.client_path,
                    DownlinkFigures(
                        estimate_kbps=round(link.estimate_kbps, 1),
                        video_paused=link.gate.video_paused,
                        layer="full" if forwarding else None,
                    ),
                )
            )
        return figures


def _label_sources(summary: OfferSummary, sources: Mapping[str, str]) -> dict[str, str]:
    """Map each sending mid to camera/microphone/screen; unknown mids or kinds are refused."""
    sending = {m.mid: m for m in summary.sending}
    labelled: dict[str, str] = {}
    for mid, source in sources.items():
        media = sending.get(mid)
        if media is None:
            raise UnknownTrack(f"mid {mid!r} is not a sending media section of this offer")
        if SOURCE_KINDS.get(source) != media.kind:
            raise UnknownTrack(f"source {source!r} cannot be a {media.kind} track")
        labelled[mid] = source
    defaults = {"audio": ["microphone"], "video": ["camera", "screen"]}
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


def _answered_codecs(peer: MediaPeer) -> dict[str, RTCRtpCodecParameters]:
    """The first codec of each m-line in our answer: what the publisher will send."""
    description = peer.pc.localDescription
    if description is None:
        return {}
    parsed = SessionDescription.parse(description.sdp)
    return {m.rtp.muxId: m.rtp.codecs[0] for m in parsed.media if m.rtp.codecs}


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
