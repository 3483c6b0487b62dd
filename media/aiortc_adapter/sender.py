"""The forwarding sender: packets pushed in by the router, rewritten for one subscriber.

aiortc's sender pulls frames from a track and encodes them (``_run_rtp``); this one waits there
instead (unless the transcoding fallback hands it a track) while the router pushes packets in
through :meth:`ForwardingSender.send_forwarded`. Packets are serialised by
:mod:`media.rtp_packing` with the mid and header extension ids of the first ``send()`` call (the
only one aiortc configures itself from), kept as bytes, and parsed back into aiortc's history
only when a NACK asks for one, just before aiortc's ``_retransmit`` resends it (as RTX when
negotiated). Sent packets are counted where aiortc's sender reports read them. REMB, receiver
reports (whose RTT :mod:`media.rtt` computes) and keyframe requests from the subscriber go to
the :class:`SenderFeedback` the router sets; NACKs are queued there within the subscriber's
budget.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiortc import RTCRtpSender
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpSendParameters
from aiortc.rtp import RTP_HISTORY_SIZE, AnyRtcpPacket, RtcpRrPacket, RtcpSrPacket, RtpPacket

from media.aiortc_adapter.remb import read_remb
from media.aiortc_adapter.transport import send_rtp_now
from media.eager import run_eagerly
from media.rtp_packing import ExtensionIds, ExtensionWriter, ntp_time, pack_rtp, read_rtp
from media.rtp_packing import sequence_number as rtp_sequence_number
from media.rtt import RoundTripMeter


class SenderFeedback(Protocol):
    """What a forwarding sender reports about its subscriber's link, and asks before resending."""

    def on_remb(self, ssrcs: frozenset[int], bitrate_bps: int) -> None: ...

    def on_report(
        self, fraction_lost: float, rtt_s: float | None, highest_sequence: int
    ) -> None: ...

    def on_sent(self, sequence: int, size: int) -> None: ...

    def retransmit(
        self, sequence: int, payload_bytes: int, send: Callable[[], Awaitable[None]]
    ) -> None:
        """A NACKed packet of ``payload_bytes`` (without headers): call ``send`` to resend it."""


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
    def swap_class(cls, sender: RTCRtpSender) -> ForwardingSender:
        """Turn a sender aiortc just created into a forwarding one (before it is used)."""
        sender.__class__ = cls
        swapped: ForwardingSender = sender  # type: ignore[assignment]
        swapped._codec = None
        swapped._transcode = asyncio.Event()
        swapped._on_keyframe_request = None
        swapped._on_start = None
        swapped._remb_bps = None
        swapped._feedback = None
        swapped._round_trip = RoundTripMeter()
        swapped._extensions = None
        swapped._sent = {}
        return swapped

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
        remb = read_remb(packet)
        if remb is not None and self._ssrc in remb[1]:
            bitrate, ssrcs = remb
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
        self._feedback.retransmit(sequence_number, payload_bytes, resend)

    async def _resend(self, sequence_number: int) -> None:
        """Resend a forwarded packet through aiortc's ``_retransmit`` (RTX when negotiated)."""
        slot = sequence_number % RTP_HISTORY_SIZE
        data = self._sent.get(slot)
        if data is None or rtp_sequence_number(data) != sequence_number:
            return  # overwritten while it waited for budget
        history: dict[int, RtpPacket] = self._RTCRtpSender__rtp_history  # type: ignore[attr-defined]
        history[slot] = RtpPacket.parse(data, self._RTCRtpSender__rtp_header_extensions_map)  # type: ignore[attr-defined]
        await super()._retransmit(sequence_number)

    def _transmit(self, data: bytes) -> None:
        """Protect and send one forwarded packet (raises ``ConnectionError`` if closed).

        Sent within the call when the nominated pair allows it (always on the relay's usual
        path); otherwise aiortc's ``_send_rtp``, which checks the state as its first step and
        does not wait on its way to the socket, is run at once (:func:`~media.eager.run_eagerly`).
        """
        if not send_rtp_now(self.transport, data):
            run_eagerly(self.transport._send_rtp(data))

    def send_forwarded(
        self,
        source: RtpPacket,
        payload_type: int,
        sequence_number: int,
        timestamp: int,
        payload_head: bytes = b"",
    ) -> None:
        """Send one publisher packet with this subscriber's SSRC, PT, sequence, timestamp
        (and ``payload_head`` over the start of its payload: a rewritten VP8 descriptor).

        Serialised straight to bytes (:mod:`media.rtp_packing`) and kept as bytes for NACKs. A
        plain call: a coroutine per packet and subscriber cost more than the rest of the send.
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
            payload_head,
        )
        self._sent[sequence_number % RTP_HISTORY_SIZE] = data
        try:
            self._transmit(data)
        except ConnectionError:
            return
        self._RTCRtpSender__ntp_timestamp = ntp
        self._RTCRtpSender__rtp_timestamp = timestamp
        self._RTCRtpSender__octet_count += len(source.payload)  # type: ignore[attr-defined]
        self._RTCRtpSender__packet_count += 1  # type: ignore[attr-defined]
        if self._feedback is not None:
            self._feedback.on_sent(sequence_number, len(data))
