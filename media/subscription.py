"""A published track and its subscriptions: deciding per packet what each subscriber gets.

A :class:`PublishedTrack` is one track a participant sends to the server; each packet its
receiver delivers goes to the recording taps, the transcoder (if any subscriber needs one) and
every :class:`Subscription`. A subscription is one publisher track forwarded to one subscriber.
:meth:`Subscription.forward` first decides (:meth:`Subscription._admit`: paused, transcoding,
frame budget, waiting for a place the stream may start) and then writes the packet with the
subscriber's own numbering (:meth:`Subscription._write`, :class:`~media.rtp_rewriter.RtpRewriter`)
through the subscriber's :class:`~media.aiortc_adapter.ForwardingSender`. A VP8 track sent with
temporal layers is measured per layer (:class:`~media.layer_selection.LayerRates`); each
subscription forwards the layers its budget carries (:class:`~media.layer_rewriter.LayerRewriter`
in ``_admit``, chosen by :meth:`Subscription.select_layer`) and writes the rewritten VP8
descriptor.

Both get a :class:`RouteContext` (ids, settings, counters, taps, a way to run a job), not the
router.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtptransceiver import RTCRtpTransceiver
from aiortc.rtp import RtpPacket

from media.aiortc_adapter import ForwardingReceiver, ForwardingSender, codec_data
from media.config import MediaConfig
from media.downlink import DownlinkFeedback, SubscriberLink
from media.keyframes import may_start_stream
from media.layer_rewriter import LayerNumbers, LayerRewriter
from media.layer_selection import LayerRates, LayerSelector
from media.metrics import MediaMetrics
from media.rtp_rewriter import RtpRewriter
from media.taps import PacketTap, TrackInfo
from media.transcode import RelayedTrack, TranscodeSource
from media.vp8_descriptor import Vp8Descriptor, parse_vp8_descriptor, rewritten_descriptor

logger = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, Any]], None]

_VP8 = frozenset(("video/VP8", "video/vp8"))


@dataclass(frozen=True)
class RouteContext:
    """What tracks and subscriptions need of their consultation's router."""

    consultation_id: str
    config: MediaConfig
    metrics: MediaMetrics
    taps: Sequence[PacketTap]
    spawn: Spawn


class PublishedTrack:
    """One track a participant sends to the server."""

    def __init__(
        self, context: RouteContext, info: TrackInfo, mid: str, receiver: ForwardingReceiver
    ) -> None:
        self.info = info
        self.mid = mid
        self.receiver = receiver
        self.muted = False
        self.subscriptions: list[Subscription] = []
        self._context = context
        self._taps = context.taps
        self._transcoder: TranscodeSource | None = None
        self._last_keyframe_request = 0.0
        self._ended = False
        self.layer_rates = LayerRates(context.config.congestion.layer_rate_window_s)
        self._keyframe_timestamp: int | None = None
        receiver.set_sink(self._on_packet)

    def _on_packet(self, packet: RtpPacket) -> None:
        codec = self.receiver.codec_for(packet.payload_type)
        if codec is None or self._ended:
            return
        taps = self._taps
        if taps or self._transcoder is not None:
            payload = codec_data(packet, codec)
            if payload is None:
                return  # a payload the codec's parser refuses (aiortc's own path drops it too)
            self._tap(taps, packet, payload)
        descriptor = None
        if codec.mimeType in _VP8:  # its descriptor is read once, for every subscriber
            descriptor = parse_vp8_descriptor(packet.payload)
            stream_start = descriptor is not None and descriptor.keyframe(packet.payload)
            if stream_start:
                self._keyframe_timestamp = packet.timestamp
            if (
                descriptor is not None
                and descriptor.temporal_id is not None
                and packet.timestamp != self._keyframe_timestamp
            ):
                self.layer_rates.on_packet(descriptor.temporal_id, len(packet.payload))
        else:
            stream_start = may_start_stream(codec.mimeType, packet.payload)
        if self._transcoder is not None and self._transcoder.feed(packet, stream_start):
            self.request_keyframe()
        for subscription in self.subscriptions:
            subscription.forward(packet, codec, stream_start, descriptor)

    def _tap(self, taps: Sequence[PacketTap], packet: RtpPacket, payload: bytes) -> None:
        """Hand one packet and its codec data to each tap (a recorder); a failing tap is logged."""
        for tap in taps:
            try:
                tap.on_rtp(self.info, packet, payload)
            except Exception:
                self._tap_failed()

    def _tap_failed(self) -> None:
        logger.exception(
            "tap failed consultation=%s track=%s",
            self._context.consultation_id,
            self.info.track_id,
        )

    def request_keyframe(self, force: bool = False) -> None:
        """Ask the publisher for a keyframe (PLI), at most once per throttle interval."""
        if self.info.kind != "video" or self._ended:
            return
        now = time.monotonic()
        interval = self._context.config.keyframe_request_interval_s
        if not force and now - self._last_keyframe_request < interval:
            return
        self._last_keyframe_request = now
        self._context.metrics.keyframe_requests.inc()
        self._context.spawn(self.receiver.request_keyframe())

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
        for tap in self._context.taps:
            try:
                tap.on_track_ended(self.info)
            except Exception:
                self._tap_failed()


class Subscription:
    """One publisher track forwarded to one subscriber, with its own RTP numbering.

    The slot (its transceiver on the subscriber's connection) outlives the publisher: a
    publisher that comes back is attached again (:meth:`attach`).
    """

    def __init__(
        self,
        context: RouteContext,
        subscriber_id: str,
        track_id: str,
        kind: str,
        sender: ForwardingSender,
        transceiver: RTCRtpTransceiver,
        link: SubscriberLink,
    ) -> None:
        self.subscriber_id = subscriber_id
        self.track_id = track_id
        self.kind = kind
        self.sender = sender
        self.link = link
        self.track: PublishedTrack | None = None
        # Paused: by the participant (audio-only receive) or by the server (weak link).
        self.user_paused = False
        self.link_paused = False
        self.paused = False
        # Waiting for a place the stream may start (start, rejoin, resume, resync).
        self.needs_keyframe = True
        self._keyframe_asked = False
        self._keyframe_asked_at = 0.0
        self._pli_passed_at = 0.0
        self._resync = False
        # The frame budget decides per frame, by the RTP timestamp of its packets.
        self._frame_timestamp: int | None = None
        self._dropping_frame = False
        self._keyframe_frame = False
        self._numbers = RtpRewriter()
        self._layers = LayerRewriter()
        self._layer_selector = LayerSelector(context.config.congestion)
        # The layer numbers of the packet _admit just let through (None: not layered).
        self._admitted: LayerNumbers | None = None
        self._relayed: RelayedTrack | None = None
        self._unreported_packets = 0
        self._unreported_bytes = 0
        self._context = context
        # Read for every packet: kept here rather than looked up through the context each time.
        self._video = kind == "video"
        self._force_transcode = context.config.force_transcode
        self._rtp_header_bytes = context.config.congestion.rtp_header_bytes
        self._transceiver = transceiver
        self._feedback: DownlinkFeedback = link.sender_feedback(kind, self._packet_lost)
        sender.on_keyframe_request(self._on_subscriber_pli)
        sender.on_start(self._on_sender_started)
        sender.set_feedback(self._feedback)

    @property
    def mid(self) -> str | None:
        mid = self._transceiver.mid
        return str(mid) if mid is not None else None

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
            self._context.metrics.keyframe_requests_throttled.inc()
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

    def _frame_dropped(self, packet: RtpPacket, stream_start: bool) -> bool:
        """Whether this video packet belongs to a frame the send budget has no room for."""
        if packet.timestamp != self._frame_timestamp:
            self._frame_timestamp = packet.timestamp
            self._keyframe_frame = stream_start
            self._dropping_frame = not self.link.video_frame_allowed()
            if stream_start and not self._dropping_frame:
                self.link.keyframe_started()
            if self._dropping_frame:
                # VP8 cannot decode past a skipped frame: resume at a keyframe.
                self.needs_keyframe = True
                self._ask_keyframe()
        return self._dropping_frame

    def forward(
        self,
        packet: RtpPacket,
        codec: RTCRtpCodecParameters,
        stream_start: bool,
        descriptor: Vp8Descriptor | None = None,
    ) -> None:
        """Forward one publisher packet if this subscriber is to get it.

        ``stream_start``: the subscriber's stream may start at this packet (any audio packet,
        the first packet of a video keyframe; :func:`~media.keyframes.may_start_stream`).
        ``descriptor``: a VP8 packet's payload descriptor.
        """
        sender_codec = self.sender.codec
        if sender_codec is None or sender_codec.payloadType is None:
            return
        if self._admit(packet, codec, sender_codec, stream_start, descriptor):
            self._write(packet, sender_codec.payloadType, descriptor)

    def _admit(
        self,
        packet: RtpPacket,
        codec: RTCRtpCodecParameters,
        sender_codec: RTCRtpCodecParameters,
        stream_start: bool,
        descriptor: Vp8Descriptor | None,
    ) -> bool:
        """Whether this packet goes to the subscriber (the forwarding decision); a packet of a
        temporal layer above the subscriber's is dropped first, costing no frame budget and no
        keyframe."""
        self._admitted = None
        if self.paused:
            return False
        if self._relayed is not None:
            if self.track is not None:
                self.track.transcoder(codec).subscribe(self._relayed)
            return False
        if self._force_transcode or sender_codec.mimeType.lower() != codec.mimeType.lower():
            self._start_transcoding(codec)
            return False
        layered = (
            descriptor if descriptor is not None and descriptor.temporal_id is not None else None
        )
        if layered is not None and not self.needs_keyframe:
            self._admitted = self._admit_layer(packet, layered, stream_start)
            if self._admitted is None:
                return False
        elif layered is None and self._layers.squeezing and codec.mimeType in _VP8:
            return False  # no descriptor (padding only): its number would take another's
        if self._video and self._frame_dropped(packet, stream_start):
            return False
        if self.needs_keyframe:
            if not stream_start:
                self._ask_keyframe()
                return False
            if descriptor is not None:
                self._layers.restart(packet.sequence_number, descriptor)
            if layered is not None:
                self._admitted = self._admit_layer(packet, layered, stream_start)
            self._restart(packet, codec.clockRate)
        return True

    def _admit_layer(
        self, packet: RtpPacket, descriptor: Vp8Descriptor, stream_start: bool
    ) -> LayerNumbers | None:
        return self._layers.admit(
            packet.sequence_number, packet.timestamp, bool(packet.marker), descriptor, stream_start
        )

    def select_layer(self, share_kbps: float | None, now: float) -> None:
        """Choose the temporal layer for a video share of ``share_kbps`` (``None``: the link is
        not budgeted; every layer goes). Nothing changes for a track without layers."""
        if self.track is not None:
            rates = self.track.layer_rates
            self._layers.target = self._layer_selector.update(share_kbps, rates, now)

    @property
    def forwarded_layer(self) -> int | None:
        """The highest temporal layer forwarded (``None``: no layers, or nothing forwarded)."""
        track = self.track
        current = self._layers.current
        if track is None or self.paused or current is None or track.layer_rates.top_layer is None:
            return None
        return min(current, track.layer_rates.top_layer)

    def _write(
        self, packet: RtpPacket, payload_type: int, descriptor: Vp8Descriptor | None
    ) -> None:
        """Send an admitted packet with this subscriber's numbering (video through its link)."""
        layer = self._admitted
        sequence = packet.sequence_number if layer is None else layer.sequence
        numbers = self._numbers.rewrite(sequence, packet.timestamp)
        if numbers is None:
            return  # from before this subscription (re)started: the subscriber never saw its frame
        head = b""
        if (
            layer is not None
            and descriptor is not None
            and (
                layer.picture_id != descriptor.picture_id or layer.tl0_index != descriptor.tl0_index
            )
        ):
            head = rewritten_descriptor(
                packet.payload, descriptor, layer.picture_id, layer.tl0_index
            )
        if self._video:
            send = functools.partial(
                self.sender.send_forwarded,
                packet,
                payload_type,
                numbers.sequence,
                numbers.timestamp,
                head,
            )
            size = len(packet.payload) + self._rtp_header_bytes
            self.link.send_video(size, send, keyframe=self._keyframe_frame)
        else:
            self.sender.send_forwarded(packet, payload_type, numbers.sequence, numbers.timestamp)
        self._unreported_packets += 1
        self._unreported_bytes += len(packet.payload)

    def report_metrics(self) -> None:
        """Add what was forwarded since the last call to the node's counters.

        Counted per packet in plain integers and reported in batches (each control step):
        a Prometheus counter update costs a lock and, by label, a dictionary lookup.
        """
        if not self._unreported_packets:
            return
        metrics = self._context.metrics
        metrics.forwarded_packets.labels(self.kind).inc(self._unreported_packets)
        metrics.forwarded_bytes.labels(self.kind).inc(self._unreported_bytes)
        self._unreported_packets = self._unreported_bytes = 0

    def _restart(self, packet: RtpPacket, clock_rate: int) -> None:
        """Continue this subscriber's stream from ``packet`` (start, rejoin, resume)."""
        skips_gap = self._resync and self._numbers.last_sent is not None
        resumes_at = self._numbers.rebase(
            packet.sequence_number, packet.timestamp, clock_rate, self._resync
        )
        if skips_gap:
            self._feedback.skip_gap(resumes_at)
        self._resync = False
        self.needs_keyframe = False
        logger.info(
            "subscription started consultation=%s subscriber=%s track=%s",
            self._context.consultation_id,
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
        metrics = self._context.metrics
        metrics.transcoding_subscriptions.labels(self.kind).inc()
        metrics.transcoding_active.inc()
        log = logger.info if self._context.config.force_transcode else logger.warning
        log(
            "transcoding fallback consultation=%s subscriber=%s track=%s from=%s to=%s",
            self._context.consultation_id,
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
            self._context.metrics.transcoding_active.dec()
        self.sender.on_keyframe_request(None)
        self.sender.on_start(None)
