"""Hooks into aiortc that forward encoded RTP between peer connections, with no codec in between.

Written for and tested with **aiortc 1.16.x** (aioice 0.13); ``pyproject.toml`` pins
``aiortc>=1.16,<1.17``. This is the only module that reaches into aiortc internals;
:func:`check_internals` verifies each one and ``tests/media/test_forwarding_internals.py`` fails
loudly if an upgrade moves them. What it relies on:

* ``RTCPeerConnection._RTCPeerConnection__createTransceiver`` (name-mangled, private): wrapped by
  :class:`ForwardingPeerConnection` to swap every new transceiver's receiver/sender class and set
  codec preferences before codecs are negotiated.
* Opus carries no ``fmtp`` in aiortc's codec table, so after aiortc sets ``_codecs`` (in
  ``setRemoteDescription`` and ``createOffer``) every Opus entry is replaced by a copy with
  ``useinbandfec=1;usedtx=1`` (:data:`OPUS_FMTP`), and every m-section of our offers is
  described from those codecs: offers and answers, publisher and subscriber legs, say the same.
* ``RTCPeerConnection.createOffer`` resets every transceiver's ``_codecs`` and
  ``_headerExtensions`` (``RTCRtpTransceiver`` attributes) to aiortc's default numbering, also for
  m-sections already negotiated with the browser's. :meth:`ForwardingPeerConnection.createOffer`
  restores the negotiated ones, renumbers new ones around them (:class:`BundleNumbering`) and
  rewrites the offer's m-sections to match, finding a new transceiver's m-section by
  ``RTCRtpTransceiver._get_mline_index()``.
* ``RTCRtpReceiver._handle_rtp_packet``: runs REMB estimation, stats, RTX unwrap, NACK generation
  and ``depayload()``, then ``self._RTCRtpReceiver__jitter_buffer.add(packet)``; we replace that
  jitter buffer with a pass-through, so each packet is forwarded as soon as it arrives instead of
  one frame later, and nothing is ever queued to a decoder. ``_send_rtcp`` is overridden so the
  server's own REMB goes to :mod:`media.upstream` instead of straight to the publisher, which
  then sends the combined REMB with ``_RTCRtpReceiver__rtcp_ssrc`` as the sender SSRC.
* :meth:`ForwardingReceiver.receive_unparsed` stands in for ``_handle_rtp_packet`` (and
  aiortc's parse before it) for each packet but RTX once aiortc has routed a stream: it relies
  on ``_enabled``, on ``_RTCRtpReceiver__remote_bitrate_estimator`` (``add``, whose REMB goes out
  from ``__rtcp_ssrc``), ``__active_ssrc``, ``__remote_streams`` (``StreamStatistics.add``,
  behind the receiver reports), ``__nack_generator`` (``add``, ``missing``) and
  ``_send_rtcp_nack``. Such a packet is not depayloaded: :func:`codec_data` does what aiortc's
  ``depayload`` call does when a tap or the transcoder needs the codec data.
* ``RTCRtpReceiver.receive`` starts a decoder thread (``_RTCRtpReceiver__decoder_thread``); we stop
  it at once with ``_RTCRtpReceiver__stop_decoder`` (the decoder object itself is created lazily
  by that thread and therefore never is). ``_send_rtcp_pli`` sends picture-loss requests upstream.
* ``RTCRtpSender._run_rtp(codec)`` pulls frames from a track and encodes them; we override it to
  wait (setting ``_RTCRtpSender__rtp_started``/``__rtp_exited``, which ``stop()`` waits on) while
  the router pushes packets in. Forwarded packets are serialised by :mod:`media.rtp_packing`
  with the mid (``muxId``) and header extension ids of the parameters of the first ``send()``
  call, which is also the only call aiortc configures itself from (``send`` is extended to note
  them). They are kept as bytes; a NACKed one is parsed back with
  ``_RTCRtpSender__rtp_header_extensions_map`` into ``_RTCRtpSender__rtp_history`` just before
  aiortc's ``_retransmit`` (which reads that slot) resends it, wrapped as RTX when negotiated.
  Sent packets are counted in ``__ntp_timestamp``/``__rtp_timestamp``/``__octet_count``/
  ``__packet_count`` (the sender reports). ``_send_keyframe`` (PLI/FIR from the subscriber),
  ``_handle_rtcp_packet`` (REMB; receiver reports, whose RTT :mod:`media.rtt` computes and
  writes into ``_RTCRtpSender__rtt``, clearing ``__lsr`` so aiortc computes none),
  ``_send_rtcp`` (the sender reports' send times) and
  ``_retransmit`` (NACKed packets, queued for the subscriber's pacer, which later calls aiortc's
  own ``_retransmit`` within the subscriber's budget) are overridden.
  Packets go out through :func:`media.fast_transport.send_rtp_now` (``RTCDtlsTransport._send_rtp``
  where it does not apply), and once a peer connection is connected its transports' SRTP comes
  in through :func:`media.fast_transport.receive_directly` (that module lists what it relies on).
* For the transcoding fallback only: ``aiortc.jitterbuffer.JitterBuffer``, the ``timestamp``
  of the ``JitterFrame`` it returns, and ``aiortc.codecs.get_decoder`` (see
  :class:`TranscodeDecoder`).
"""

from __future__ import annotations

import asyncio
import copy
import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from aiortc import (
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCSessionDescription,
    clock,
)
from aiortc.codecs import depayload, get_decoder, is_rtx
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rate import RemoteBitrateEstimator
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpReceiveParameters,
    RTCRtpSendParameters,
)
from aiortc.rtcrtpreceiver import NackGenerator, StreamStatistics
from aiortc.rtcrtptransceiver import RTCRtpTransceiver
from aiortc.rtp import (
    DYNAMIC_PAYLOAD_TYPES,
    RTCP_PSFB_APP,
    RTP_HISTORY_SIZE,
    AnyRtcpPacket,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpSrPacket,
    RtpPacket,
    pack_remb_fci,
    unpack_remb_fci,
)
from aiortc.sdp import MediaDescription, SessionDescription

from media.fast_transport import receive_directly, run_eagerly, send_rtp_now
from media.internals import missing_lines
from media.rtp_packing import (
    ABS_SEND_TIME_URI,
    AUDIO_LEVEL_URI,
    ExtensionIds,
    ExtensionWriter,
    ntp_time,
    pack_rtp,
    read_rtp,
)
from media.rtp_packing import sequence_number as rtp_sequence_number
from media.rtt import RoundTripMeter

logger = logging.getLogger(__name__)

AIORTC_TESTED = "1.16"

_EXTENSION_IDS = range(1, 15)  # one-byte header extensions (RFC 8285)

# In-band FEC lets the listener rebuild a lost 20 ms frame from the next packet (what weak,
# lossy links need); DTX sends one packet per 400 ms in silence instead of 50 a second, leaving
# the link to the other party's speech and video. Both state what the server, as the receiver of
# every publisher, wants; in one BUNDLE group one payload type has one meaning (RFC 8843), so
# subscriber m-sections carry the same parameters.
OPUS_FMTP: dict[str, int] = {"useinbandfec": 1, "usedtx": 1}

PacketSink = Callable[[RtpPacket], Coroutine[Any, Any, None]]
RembListener = Callable[[int, list[int]], None]


class SenderFeedback(Protocol):
    """What a forwarding sender reports about its subscriber's link, and asks before resending."""

    def on_remb(self, ssrcs: frozenset[int], bitrate_bps: int) -> None: ...

    def on_report(
        self, fraction_lost: float, rtt_s: float | None, highest_sequence: int
    ) -> None: ...

    def on_sent(self, sequence: int, size: int) -> None: ...

    def retransmit(self, sequence: int, size: int, send: Callable[[], Awaitable[None]]) -> None: ...


class CodecPolicy(Protocol):
    """Chooses codec preferences for a transceiver as aiortc creates it."""

    def preferences_for(self, kind: str) -> list[Any]: ...


class ForwardingPeerConnection(RTCPeerConnection):
    """An ``RTCPeerConnection`` whose receivers (and senders) forward encoded packets.

    ``forward_senders=False`` keeps aiortc's own senders (the benchmark's load clients publish
    pre-encoded packets through them and receive without decoding).
    """

    def __init__(
        self, configuration: Any, codec_policy: CodecPolicy, forward_senders: bool = True
    ) -> None:
        super().__init__(configuration)
        self._codec_policy = codec_policy
        self._forward_senders = forward_senders
        self._receiving_directly: set[RTCDtlsTransport] = set()
        self.on("connectionstatechange", self._receive_directly)

    def _receive_directly(self) -> None:
        """Once connected, each transport's SRTP is handled as it arrives
        (:mod:`media.fast_transport`)."""
        if self.connectionState != "connected":
            return
        for transceiver in self.getTransceivers():
            dtls = transceiver.receiver.transport
            if dtls not in self._receiving_directly:
                self._receiving_directly.add(dtls)
                receive_directly(dtls)

    def _RTCPeerConnection__createTransceiver(  # noqa: N802 - overrides aiortc's private method
        self, direction: str, kind: str, sender_track: MediaStreamTrack | None = None
    ) -> RTCRtpTransceiver:
        transceiver: RTCRtpTransceiver = super()._RTCPeerConnection__createTransceiver(  # type: ignore[misc]
            direction, kind, sender_track
        )
        ForwardingReceiver.adopt(transceiver.receiver)
        if self._forward_senders:
            ForwardingSender.adopt(transceiver.sender)
        preferences = self._codec_policy.preferences_for(kind)
        if preferences:
            transceiver.setCodecPreferences(preferences)
        return transceiver

    async def createOffer(self) -> RTCSessionDescription:  # noqa: N802 - aiortc's API name
        """An offer that keeps the payload types and extension ids already negotiated.

        JSEP (RFC 8829 5.2.2) has subsequent offers keep them for existing m-sections; aiortc
        renumbers every m-section with its defaults, so the browser would switch numbers while
        our receivers (and the transport's extension map) keep the old ones. New m-sections
        reuse the numbers the BUNDLE group already has and take free ones otherwise.
        """
        negotiated = {
            transceiver: (transceiver._codecs, transceiver._headerExtensions)
            for transceiver in self.getTransceivers()
            if transceiver.mid is not None
        }
        offer = await super().createOffer()
        for transceiver in self.getTransceivers():
            transceiver._codecs = with_opus_fmtp(transceiver._codecs)
        numbering = BundleNumbering()
        for transceiver, (codecs, extensions) in negotiated.items():
            transceiver._codecs = codecs
            transceiver._headerExtensions = extensions
            numbering.reserve(codecs, extensions)
        description = SessionDescription.parse(offer.sdp)
        for index, media in enumerate(description.media):
            if media.kind not in ("audio", "video"):
                continue
            transceiver = self._offered_transceiver(media.rtp.muxId, index)
            if transceiver.mid is None:
                transceiver._codecs = numbering.codecs_for(transceiver._codecs)
                transceiver._headerExtensions = numbering.extensions_for(
                    transceiver._headerExtensions
                )
            _describe_rtp(media, transceiver)
        return RTCSessionDescription(sdp=str(description), type="offer")

    async def setRemoteDescription(  # noqa: N802 - aiortc's API name
        self,
        sessionDescription: RTCSessionDescription,  # noqa: N803
    ) -> None:
        await super().setRemoteDescription(sessionDescription)
        for transceiver in self.getTransceivers():
            transceiver._codecs = with_opus_fmtp(transceiver._codecs)

    def _offered_transceiver(self, mid: str | None, index: int) -> RTCRtpTransceiver:
        transceivers = self.getTransceivers()
        known = next((t for t in transceivers if t.mid is not None and t.mid == mid), None)
        if known is not None:
            return known
        return next(t for t in transceivers if t.mid is None and t._get_mline_index() == index)


def with_opus_fmtp(codecs: list[RTCRtpCodecParameters]) -> list[RTCRtpCodecParameters]:
    """``codecs`` with every Opus entry carrying :data:`OPUS_FMTP` (copies; others unchanged)."""
    updated = []
    for codec in codecs:
        if codec.mimeType.lower() == "audio/opus" and any(
            codec.parameters.get(k) != v for k, v in OPUS_FMTP.items()
        ):
            codec = copy.deepcopy(codec)
            codec.parameters.update(OPUS_FMTP)
        updated.append(codec)
    return updated


def _describe_rtp(media: MediaDescription, transceiver: RTCRtpTransceiver) -> None:
    """Make an offer's m-section state the transceiver's codecs and extensions."""
    media.fmt = [codec.payloadType for codec in transceiver._codecs]
    media.rtp.codecs = transceiver._codecs
    media.rtp.headerExtensions = transceiver._headerExtensions
    if not any(is_rtx(codec) for codec in transceiver._codecs):
        media.ssrc = media.ssrc[:1]
        media.ssrc_group = []


def _codec_identity(codec: RTCRtpCodecParameters) -> tuple[object, ...]:
    return (
        codec.mimeType.lower(),
        codec.clockRate,
        codec.channels,
        tuple(sorted((str(k), str(v)) for k, v in codec.parameters.items())),
    )


class BundleNumbering:
    """Payload types and header-extension ids in use in one BUNDLE group, and what they mean.

    In a BUNDLE group a number must mean the same thing in every m-section (RFC 8843 7.5.1):
    a new m-section reuses the number a codec or extension already has, keeps aiortc's default
    if that is free, and takes the lowest free one otherwise (codecs without one are left out).
    """

    def __init__(self) -> None:
        self._codecs: dict[int, tuple[object, ...]] = {}
        self._extensions: dict[str, int] = {}

    def reserve(
        self,
        codecs: list[RTCRtpCodecParameters],
        extensions: list[RTCRtpHeaderExtensionParameters],
    ) -> None:
        """Record numbers already negotiated; they are never given another meaning."""
        for codec in codecs:
            if codec.payloadType is not None:
                self._codecs.setdefault(codec.payloadType, _codec_identity(codec))
        for extension in extensions:
            self._extensions.setdefault(extension.uri, extension.id)

    def codecs_for(self, codecs: list[RTCRtpCodecParameters]) -> list[RTCRtpCodecParameters]:
        """Copies of ``codecs`` (RTX after its base codec) numbered to fit the group."""
        renumbered: dict[int | None, int] = {}
        numbered = []
        for original in codecs:
            codec = copy.deepcopy(original)
            if is_rtx(codec):
                apt = renumbered.get(codec.parameters.get("apt"))  # type: ignore[arg-type]
                if apt is None:
                    continue
                codec.parameters["apt"] = apt
            payload_type = self._payload_type_for(codec)
            if payload_type is None:
                continue
            renumbered[original.payloadType] = payload_type
            codec.payloadType = payload_type
            self._codecs[payload_type] = _codec_identity(codec)
            numbered.append(codec)
        return numbered

    def extensions_for(
        self, extensions: list[RTCRtpHeaderExtensionParameters]
    ) -> list[RTCRtpHeaderExtensionParameters]:
        """``extensions`` with ids that fit the group."""
        numbered = []
        for extension in extensions:
            extension_id = self._extensions.get(extension.uri)
            if extension_id is None:
                used = set(self._extensions.values())
                free = [i for i in _EXTENSION_IDS if i not in used]
                if not free:
                    continue
                extension_id = extension.id if extension.id in free else free[0]
                self._extensions[extension.uri] = extension_id
            numbered.append(RTCRtpHeaderExtensionParameters(id=extension_id, uri=extension.uri))
        return numbered

    def _payload_type_for(self, codec: RTCRtpCodecParameters) -> int | None:
        identity = _codec_identity(codec)
        for payload_type, known in self._codecs.items():
            if known == identity:
                return payload_type
        if codec.payloadType is not None and codec.payloadType not in self._codecs:
            return codec.payloadType
        # aiortc keeps an answer's payload types only when dynamic, so allocate from those.
        return next((pt for pt in DYNAMIC_PAYLOAD_TYPES if pt not in self._codecs), None)


class _PassThroughBuffer:
    """Stands in for aiortc's jitter buffer: hands every packet on, never assembles frames."""

    def __init__(self, receiver: ForwardingReceiver) -> None:
        self._receiver = receiver

    def add(self, packet: RtpPacket) -> tuple[bool, None]:
        self._receiver._arrived.append(packet)
        return False, None


def codec_data(packet: RtpPacket, codec: RTCRtpCodecParameters) -> bytes | None:
    """A received packet's codec data (aiortc's ``depayload``), worked out once per packet.

    ``None`` for a payload aiortc's parser refuses (aiortc's own path drops such a packet).
    """
    data: bytes | None = getattr(packet, "_data", None)
    if data is None:
        try:
            data = depayload(codec, packet.payload) if packet.payload else b""
        except ValueError:
            return None
        packet._data = data  # type: ignore[attr-defined]
    return data


class ForwardingReceiver(RTCRtpReceiver):
    """Receives a publisher's RTP and hands each packet to a sink at once."""

    _arrived: list[RtpPacket]
    _sink: PacketSink | None
    _codecs_by_pt: dict[int, RTCRtpCodecParameters]
    _unparsed_payload_types: frozenset[int]
    _audio_level_id: int | None
    _abs_send_time_id: int | None
    _media_ssrc: int | None
    _remb_listener: RembListener | None
    _uplink_loss: float

    @classmethod
    def adopt(cls, receiver: RTCRtpReceiver) -> ForwardingReceiver:
        receiver.__class__ = cls
        adopted: ForwardingReceiver = receiver  # type: ignore[assignment]
        adopted._arrived = []
        adopted._sink = None
        adopted._codecs_by_pt = {}
        adopted._unparsed_payload_types = frozenset()
        adopted._audio_level_id = None
        adopted._abs_send_time_id = None
        adopted._media_ssrc = None
        adopted._remb_listener = None
        adopted._uplink_loss = 0.0
        adopted._RTCRtpReceiver__jitter_buffer = _PassThroughBuffer(adopted)  # type: ignore[attr-defined]
        return adopted

    def set_sink(self, sink: PacketSink | None) -> None:
        """Where packets go; ``None`` drops them (no subscriber, no tap)."""
        self._sink = sink

    def codec_for(self, payload_type: int) -> RTCRtpCodecParameters | None:
        return self._codecs_by_pt.get(payload_type)

    @property
    def media_ssrc(self) -> int | None:
        """The SSRC of the publisher's media stream, once a packet arrived."""
        return self._media_ssrc

    def on_remb(self, listener: RembListener | None) -> None:
        """Hand the server's own REMB (bitrate, SSRCs) to ``listener`` instead of sending it."""
        self._remb_listener = listener

    async def send_remb(self, bitrate_bps: int, ssrcs: list[int]) -> None:
        """Send a REMB to the publisher (a no-op before RTCP is set up)."""
        rtcp_ssrc = self._RTCRtpReceiver__rtcp_ssrc  # type: ignore[attr-defined]
        if rtcp_ssrc is None:
            return
        packet = RtcpPsfbPacket(
            fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(bitrate_bps, ssrcs)
        )
        await super()._send_rtcp(packet)

    @property
    def uplink_loss(self) -> float:
        """Smoothed loss (0..1) of the publisher's stream, from our receiver reports."""
        return self._uplink_loss

    async def _send_rtcp(self, packet: AnyRtcpPacket) -> None:
        if isinstance(packet, RtcpRrPacket) and packet.reports:
            lost = max(report.fraction_lost for report in packet.reports) / 256.0
            self._uplink_loss = 0.5 * self._uplink_loss + 0.5 * lost
        listener = self._remb_listener
        if listener is not None and isinstance(packet, RtcpPsfbPacket):
            if packet.fmt == RTCP_PSFB_APP:
                try:
                    bitrate, ssrcs = unpack_remb_fci(packet.fci)
                except ValueError:
                    return
                listener(bitrate, ssrcs)
                return
        await super()._send_rtcp(packet)

    @property
    def decoder_running(self) -> bool:
        return self._RTCRtpReceiver__decoder_thread is not None  # type: ignore[attr-defined]

    async def receive(self, parameters: RTCRtpReceiveParameters) -> None:
        # aiortc fixes its payload-type map at the first call (later ones only re-run the
        # connection); ours follows it. Re-offers keep the numbers (see createOffer above).
        if not self._codecs_by_pt:
            self._codecs_by_pt = {
                codec.payloadType: codec
                for codec in parameters.codecs
                if codec.payloadType is not None
            }
            self._unparsed_payload_types = frozenset(
                payload_type
                for payload_type, codec in self._codecs_by_pt.items()
                if not is_rtx(codec)
            )
            ids = {e.uri: e.id for e in parameters.headerExtensions}
            self._audio_level_id = ids.get(AUDIO_LEVEL_URI)
            self._abs_send_time_id = ids.get(ABS_SEND_TIME_URI)
        await super().receive(parameters)
        # The thread exits on its first queue item; no decoder object was created yet.
        self._RTCRtpReceiver__stop_decoder()  # type: ignore[attr-defined]

    async def _handle_rtp_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        await super()._handle_rtp_packet(packet, arrival_time_ms)
        if not self._arrived:
            return
        arrived, self._arrived = self._arrived, []
        sink = self._sink
        for item in arrived:
            self._media_ssrc = item.ssrc
            if sink is not None:
                await sink(item)

    def receive_unparsed(self, data: bytes, arrival_time_ms: int) -> bool:
        """Take a decrypted packet as bytes (see :mod:`media.fast_transport`).

        Does what aiortc's ``_handle_rtp_packet`` does for a packet that is only forwarded,
        reading only the header, the audio level and abs-send-time: the bandwidth estimator
        (REMB), the source's last-seen time, the receive statistics behind our receiver
        reports, the NACK generator, and the packet to the sink. It does not depayload: the
        router does when a tap or the transcoder reads the codec data (:func:`codec_data`).
        ``False`` (aiortc's path then handles the packet): RTX, an unknown payload type, a
        stream whose statistics aiortc has not set up yet, a disabled receiver, or bytes
        aiortc would refuse.
        """
        if data[1] & 0x7F not in self._unparsed_payload_types or not self._enabled:
            return False
        try:
            header = read_rtp(data, self._audio_level_id, self._abs_send_time_id)
        except ValueError:
            return False
        ssrc = header.ssrc
        streams: dict[int, StreamStatistics] = self._RTCRtpReceiver__remote_streams  # type: ignore[attr-defined]
        statistics = streams.get(ssrc)
        if statistics is None:
            return False
        estimator: RemoteBitrateEstimator | None = self._RTCRtpReceiver__remote_bitrate_estimator  # type: ignore[attr-defined]
        if estimator is not None and header.abs_send_time is not None:
            remb = estimator.add(
                arrival_time_ms=arrival_time_ms,
                abs_send_time=header.abs_send_time,
                payload_size=len(header.payload) + header.padding_size,
                ssrc=ssrc,
            )
            rtcp_ssrc = self._RTCRtpReceiver__rtcp_ssrc  # type: ignore[attr-defined]
            if remb is not None and rtcp_ssrc is not None:
                fci = pack_remb_fci(*remb)
                run_eagerly(
                    self._send_rtcp(
                        RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=fci)
                    )
                )
        packet = RtpPacket(
            header.payload_type,
            header.marker,
            header.sequence,
            header.timestamp,
            ssrc,
            header.payload,
        )
        packet.padding_size = header.padding_size
        packet.extensions.audio_level = header.audio_level
        packet.extensions.abs_send_time = header.abs_send_time
        self._RTCRtpReceiver__active_ssrc[ssrc] = clock.current_datetime()  # type: ignore[attr-defined]
        statistics.add(packet)
        nacks: NackGenerator | None = self._RTCRtpReceiver__nack_generator  # type: ignore[attr-defined]
        if nacks is not None and nacks.add(packet):
            run_eagerly(self._send_rtcp_nack(ssrc, sorted(nacks.missing)))
        self._media_ssrc = ssrc
        if self._sink is not None:
            run_eagerly(self._sink(packet))
        return True

    async def request_keyframe(self) -> bool:
        """Send a PLI to the publisher; ``False`` if no media arrived yet to address it to."""
        if self._media_ssrc is None:
            return False
        await self._send_rtcp_pli(self._media_ssrc)
        return True


class ForwardingSender(RTCRtpSender):
    """Sends packets pushed into it, rewritten for this subscriber; never encodes unless told to."""

    _codec: RTCRtpCodecParameters | None
    _transcode: asyncio.Event
    _on_keyframe_request: Callable[[], None] | None
    _on_start: Callable[[], None] | None
    _remb_bps: int | None
    _feedback: SenderFeedback | None
    _round_trip: RoundTripMeter
    _extensions: ExtensionWriter | None
    _sent: dict[int, bytes]

    @classmethod
    def adopt(cls, sender: RTCRtpSender) -> ForwardingSender:
        sender.__class__ = cls
        adopted: ForwardingSender = sender  # type: ignore[assignment]
        adopted._codec = None
        adopted._transcode = asyncio.Event()
        adopted._on_keyframe_request = None
        adopted._on_start = None
        adopted._remb_bps = None
        adopted._feedback = None
        adopted._round_trip = RoundTripMeter()
        adopted._extensions = None
        adopted._sent = {}
        return adopted

    @property
    def codec(self) -> RTCRtpCodecParameters | None:
        """The codec negotiated with the subscriber, once sending has started."""
        return self._codec

    @property
    def remb_bps(self) -> int | None:
        """The subscriber's latest bandwidth estimate for the streams this sender is part of."""
        return self._remb_bps

    def set_feedback(self, feedback: SenderFeedback | None) -> None:
        """Where REMB, receiver reports and sent packets are reported; NACKs are asked about."""
        self._feedback = feedback

    def on_keyframe_request(self, callback: Callable[[], None] | None) -> None:
        self._on_keyframe_request = callback

    def on_start(self, callback: Callable[[], None] | None) -> None:
        """Called once sending can start (transport up, :attr:`codec` known)."""
        self._on_start = callback

    def set_stream(self, stream_id: str, track_id: str) -> None:
        """The msid the subscriber sees: publisher id, and ``<participant>:<source>``."""
        self._stream_id = stream_id
        self._track_id = track_id

    def start_transcoding(self, track: MediaStreamTrack) -> None:
        """Fall back to aiortc's encoder fed by ``track`` (no shared codec)."""
        self.replaceTrack(track)
        self._transcode.set()

    async def _run_rtp(self, codec: RTCRtpCodecParameters) -> None:
        self._codec = codec
        self._RTCRtpSender__rtp_started.set()  # type: ignore[attr-defined]
        if self._on_start is not None:
            self._on_start()
        try:
            await self._transcode.wait()
        except asyncio.CancelledError:
            self._RTCRtpSender__rtp_exited.set()  # type: ignore[attr-defined]
            return
        await super()._run_rtp(codec)

    def _send_keyframe(self) -> None:
        if self._on_keyframe_request is not None:
            self._on_keyframe_request()
        super()._send_keyframe()

    async def _handle_rtcp_packet(self, packet: AnyRtcpPacket) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                bitrate, ssrcs = 0, []
            if self._ssrc in ssrcs:
                self._remb_bps = bitrate
                if self._feedback is not None:
                    self._feedback.on_remb(frozenset(ssrcs), bitrate)
        reports: list[tuple[float, float | None, int]] = []
        if isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
            now = time.monotonic()
            reports = [
                (
                    report.fraction_lost / 256.0,
                    self._round_trip.on_receiver_report(report.lsr, report.dlsr, now),
                    report.highest_sequence,
                )
                for report in packet.reports
                if report.ssrc == self._ssrc
            ]
            # aiortc's own figure goes wrong while the stream idles (see media.rtt): its stats
            # report this meter's instead, and it computes none of its own.
            self._RTCRtpSender__rtt = self._round_trip.rtt_s
            self._RTCRtpSender__lsr = None
        await super()._handle_rtcp_packet(packet)
        if self._feedback is not None:
            for fraction_lost, rtt, highest_sequence in reports:
                self._feedback.on_report(fraction_lost, rtt, highest_sequence)

    async def _send_rtcp(self, packets: list[AnyRtcpPacket]) -> None:
        for packet in packets:
            if isinstance(packet, RtcpSrPacket) and packet.ssrc == self._ssrc:
                self._round_trip.on_sender_report(
                    packet.sender_info.ntp_timestamp, time.monotonic()
                )
        await super()._send_rtcp(packets)

    async def send(self, parameters: RTCRtpSendParameters) -> None:
        # Like aiortc, which reads mid and extension ids from the first call only.
        if self._extensions is None:
            ids = ExtensionIds.from_uris(
                [(extension.uri, extension.id) for extension in parameters.headerExtensions]
            )
            self._extensions = ExtensionWriter(ids, parameters.muxId)
        await super().send(parameters)

    async def _retransmit(self, sequence_number: int) -> None:
        if self._transcode.is_set():  # aiortc's own encoder fills aiortc's own history
            history: dict[int, RtpPacket] = self._RTCRtpSender__rtp_history  # type: ignore[attr-defined]
            packet = history.get(sequence_number % RTP_HISTORY_SIZE)
            if packet is None or packet.sequence_number != sequence_number:
                return
            resend = functools.partial(super()._retransmit, sequence_number)
            await self._queue_resend(sequence_number, len(packet.payload), resend)
            return
        data = self._sent.get(sequence_number % RTP_HISTORY_SIZE)
        if data is None or rtp_sequence_number(data) != sequence_number:
            return
        resend = functools.partial(self._resend, sequence_number)
        payload_bytes = len(read_rtp(data, None).payload)
        await self._queue_resend(sequence_number, payload_bytes, resend)

    async def _queue_resend(
        self, sequence_number: int, payload_bytes: int, resend: Callable[[], Awaitable[None]]
    ) -> None:
        """Resend now, or within the subscriber's retransmission budget once it has one."""
        if self._feedback is None:
            await resend()
            return
        # RTX adds a 2-byte original sequence number; header and extensions about 24 bytes.
        self._feedback.retransmit(sequence_number, payload_bytes + 26, resend)

    async def _resend(self, sequence_number: int) -> None:
        """Resend a forwarded packet through aiortc's ``_retransmit`` (RTX when negotiated)."""
        slot = sequence_number % RTP_HISTORY_SIZE
        data = self._sent.get(slot)
        if data is None or rtp_sequence_number(data) != sequence_number:
            return  # overwritten while it waited for budget
        history: dict[int, RtpPacket] = self._RTCRtpSender__rtp_history  # type: ignore[attr-defined]
        history[slot] = RtpPacket.parse(data, self._RTCRtpSender__rtp_header_extensions_map)  # type: ignore[attr-defined]
        await super()._retransmit(sequence_number)

    async def _transmit(self, data: bytes) -> None:
        """Protect and send one forwarded packet (raises ``ConnectionError`` if closed)."""
        if not send_rtp_now(self.transport, data):
            await self.transport._send_rtp(data)

    async def send_forwarded(
        self, source: RtpPacket, payload_type: int, sequence_number: int, timestamp: int
    ) -> None:
        """Send one publisher packet with this subscriber's SSRC, PT, sequence, timestamp.

        Serialised straight to bytes (:mod:`media.rtp_packing`) and kept as bytes for NACKs.
        """
        extensions = self._extensions
        if extensions is None:
            return
        ntp = ntp_time(time.time())
        data = pack_rtp(
            payload_type,
            bool(source.marker),
            sequence_number,
            timestamp,
            self._ssrc,
            source.payload,
            extensions.block(ntp, source.extensions.audio_level),
            source.padding_size,
        )
        self._sent[sequence_number % RTP_HISTORY_SIZE] = data
        try:
            await self._transmit(data)
        except ConnectionError:
            return
        self._RTCRtpSender__ntp_timestamp = ntp
        self._RTCRtpSender__rtp_timestamp = timestamp
        self._RTCRtpSender__octet_count += len(source.payload)  # type: ignore[attr-defined]
        self._RTCRtpSender__packet_count += 1  # type: ignore[attr-defined]
        if self._feedback is not None:
            self._feedback.on_sent(sequence_number, len(data))


EncodedFrame = JitterFrame
"""One encoded frame as aiortc's jitter buffer assembles it (``data``, RTP ``timestamp``)."""


class TranscodeDecoder:
    """Transcoding fallback only: reassembles encoded frames from packets and decodes them.

    Uses aiortc's own jitter buffer and decoder factory; ``decode`` is blocking (run it in a
    worker thread).
    """

    def __init__(self, codec: RTCRtpCodecParameters) -> None:
        self.codec = codec
        video = codec.mimeType.lower().startswith("video/")
        self._buffer = (
            JitterBuffer(capacity=512, is_video=True)
            if video
            else JitterBuffer(capacity=16, prefetch=4)
        )
        self._decoder = get_decoder(codec)

    def add(self, packet: RtpPacket) -> tuple[bool, EncodedFrame | None]:
        """Feed one depayloaded packet; returns ``(picture_lost, encoded_frame_or_None)``."""
        return self._buffer.add(packet)

    def decode(self, encoded_frame: EncodedFrame) -> list[Any]:
        return list(self._decoder.decode(encoded_frame))


def check_internals() -> list[str]:
    """Names of the aiortc internals this module needs that are missing (empty when all good)."""
    problems: list[str] = []
    create = getattr(RTCPeerConnection, "_RTCPeerConnection__createTransceiver", None)
    if create is None or list(inspect.signature(create).parameters)[:4] != [
        "self",
        "direction",
        "kind",
        "sender_track",
    ]:
        problems.append("RTCPeerConnection.__createTransceiver(direction, kind, sender_track)")
    problems += missing_lines(
        RTCRtpReceiver,
        (
            "self.__jitter_buffer.add(packet)",
            "self.__codecs[codec.payloadType] = codec",
            "packet._data = depayload(codec, packet.payload)",
            "self.__decoder_thread = threading.Thread(",
            "def __stop_decoder(self)",
            "async def _send_rtcp_pli(self, media_ssrc: int)",
            "async def _send_rtcp(self, packet: AnyRtcpPacket)",
            "self.__rtcp_ssrc: Optional[int] = None",
            "fci=pack_remb_fci(*remb),",
            "async def _handle_rtp_packet(self, packet: RtpPacket, arrival_time_ms: int)",
            # What receive_unparsed does in its place:
            "self.__nack_generator = NackGenerator()",
            "self.__remote_bitrate_estimator = RemoteBitrateEstimator()",
            "if not self._enabled:",
            "remb = self.__remote_bitrate_estimator.add(",
            "abs_send_time=packet.extensions.abs_send_time,",
            "payload_size=len(packet.payload) + packet.padding_size,",
            "if self.__rtcp_ssrc is not None and remb is not None:",
            "self.__active_ssrc[packet.ssrc] = clock.current_datetime()",
            "self.__remote_streams[packet.ssrc] = StreamStatistics(codec.clockRate)",
            "self.__remote_streams[packet.ssrc].add(packet)",
            "if is_rtx(codec):",
            "if self.__nack_generator is not None and self.__nack_generator.add(packet):",
            "packet.ssrc, sorted(self.__nack_generator.missing)",
            "async def _send_rtcp_nack(self, media_ssrc: int, lost: list[int])",
        ),
    )
    if inspect.getsource(RTCRtpReceiver).count("__jitter_buffer.") != 1:
        problems.append("RTCRtpReceiver uses its jitter buffer beyond add()")
    problems += missing_lines(
        RTCRtpSender,
        (
            "async def _run_rtp(self, codec: RTCRtpCodecParameters)",
            "self.__rtp_started = asyncio.Event()",
            "self.__rtp_exited = asyncio.Event()",
            "self.__rtp_history: dict[int, RtpPacket] = {}",
            "self.__rtp_header_extensions_map = rtp.HeaderExtensionsMap()",
            "async def send(self, parameters: RTCRtpSendParameters)",
            "if not self.__started:",
            "self.__mid = parameters.muxId",
            "self.__rtp_header_extensions_map.configure(parameters)",
            "packet = self.__rtp_history.get(sequence_number % RTP_HISTORY_SIZE)",
            "packet_bytes = packet.serialize(self.__rtp_header_extensions_map)",
            "self.__ntp_timestamp = 0",
            "self.__rtp_timestamp = 0",
            "self.__octet_count = 0",
            "self.__packet_count = 0",
            "self.__rtt: Optional[float] = None",
            "self.__lsr: Optional[int] = None",
            "if self.__lsr == report.lsr and report.dlsr:",
            "async def _send_rtcp(self, packets: list[AnyRtcpPacket])",
            "await self._retransmit(seq)",
            "def _send_keyframe(self)",
            "async def _retransmit(self, sequence_number: int)",
            "self.__rtp_task = asyncio.ensure_future(self._run_rtp(parameters.codecs[0]))",
        ),
    )
    problems += missing_lines(
        RTCRtpTransceiver,
        (
            "self._codecs: list[RTCRtpCodecParameters] = []",
            "self._headerExtensions: list[RTCRtpHeaderExtensionParameters] = []",
            "def _get_mline_index(self) -> Optional[int]",
        ),
    )
    problems += missing_lines(
        RTCPeerConnection.createOffer,
        (
            "transceiver._codecs = filter_preferred_codecs(",
            "transceiver._headerExtensions = HEADER_EXTENSIONS[transceiver.kind][:]",
            "transceiver._set_mline_index(next_mline_index())",
            "return wrap_session_description(description)",
        ),
    )
    problems += missing_lines(
        RTCPeerConnection.setRemoteDescription, ("transceiver._codecs = common",)
    )
    if not inspect.iscoroutinefunction(getattr(RTCDtlsTransport, "_send_rtp", None)):
        problems.append("RTCDtlsTransport._send_rtp")
    if "timestamp" not in inspect.signature(JitterFrame).parameters:
        problems.append("JitterFrame(data, timestamp)")
    return problems
