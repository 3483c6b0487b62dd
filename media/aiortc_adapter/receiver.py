"""The forwarding receiver: a publisher's RTP handed on as each packet arrives, never decoded.

Every packet reaches the sink through :meth:`ForwardingReceiver._deliver`, by one of two
entries:

* :meth:`ForwardingReceiver.receive_unparsed` (the usual one, from
  :mod:`media.aiortc_adapter.transport`): decrypted bytes of a routed stream, of which only the
  header and two extensions are read. It does what aiortc's ``_handle_rtp_packet`` does for a
  packet that is only forwarded, with aiortc's own objects (bandwidth estimator, receive
  statistics, NACK generator); :mod:`media.aiortc_adapter.tripwire` runs one packet
  sequence through both and compares every piece of receiver state.
* aiortc's ``_handle_rtp_packet`` for the packets the first cannot take (RTX, whose unwrapping
  stays aiortc's, and a stream's first packet, before aiortc set up its statistics): its jitter
  buffer is replaced by :class:`_PassThroughBuffer`, whose ``add`` delivers.

The receiver's own REMB goes to a listener (:mod:`media.upstream`) instead of the publisher.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiortc import RTCRtpReceiver, clock
from aiortc.codecs import depayload, is_rtx
from aiortc.rate import RemoteBitrateEstimator
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpReceiveParameters
from aiortc.rtcrtpreceiver import NackGenerator, StreamStatistics
from aiortc.rtp import AnyRtcpPacket, RtcpRrPacket, RtpPacket

from media.aiortc_adapter.remb import read_remb, remb_packet
from media.eager import run_eagerly
from media.rtp_packing import ABS_SEND_TIME_URI, AUDIO_LEVEL_URI, read_rtp

logger = logging.getLogger(__name__)

PacketSink = Callable[[RtpPacket], None]
RembListener = Callable[[int, list[int]], None]


class _PassThroughBuffer:
    """Stands in for aiortc's jitter buffer: hands every packet on, never assembles frames."""

    def __init__(self, receiver: ForwardingReceiver) -> None:
        self._receiver = receiver

    def add(self, packet: RtpPacket) -> tuple[bool, None]:
        self._receiver._deliver(packet)
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

    _sink: PacketSink | None
    _codecs_by_pt: dict[int, RTCRtpCodecParameters]
    _unparsed_payload_types: frozenset[int]
    _audio_level_id: int | None
    _abs_send_time_id: int | None
    _media_ssrc: int | None
    _remb_listener: RembListener | None
    _uplink_loss: float

    @classmethod
    def swap_class(cls, receiver: RTCRtpReceiver) -> ForwardingReceiver:
        """Turn a receiver aiortc just created into a forwarding one (before it is used)."""
        receiver.__class__ = cls
        swapped: ForwardingReceiver = receiver  # type: ignore[assignment]
        swapped._sink = None
        swapped._codecs_by_pt = {}
        swapped._unparsed_payload_types = frozenset()
        swapped._audio_level_id = None
        swapped._abs_send_time_id = None
        swapped._media_ssrc = None
        swapped._remb_listener = None
        swapped._uplink_loss = 0.0
        swapped._RTCRtpReceiver__jitter_buffer = _PassThroughBuffer(swapped)  # type: ignore[attr-defined]
        return swapped

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
        await super()._send_rtcp(remb_packet(rtcp_ssrc, bitrate_bps, ssrcs))

    @property
    def uplink_loss(self) -> float:
        """Smoothed loss (0..1) of the publisher's stream, from our receiver reports."""
        return self._uplink_loss

    async def _send_rtcp(self, packet: AnyRtcpPacket) -> None:
        if isinstance(packet, RtcpRrPacket) and packet.reports:
            lost = max(report.fraction_lost for report in packet.reports) / 256.0
            self._uplink_loss = 0.5 * self._uplink_loss + 0.5 * lost
        listener = self._remb_listener
        if listener is not None:
            remb = read_remb(packet)
            if remb is not None:
                listener(*remb)
                return
        await super()._send_rtcp(packet)

    async def receive(self, parameters: RTCRtpReceiveParameters) -> None:
        # aiortc fixes its payload-type map at the first call (later ones only re-run the
        # connection); ours follows it. Re-offers keep the numbers (see the peer connection).
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

    def _deliver(self, packet: RtpPacket) -> None:
        """The one way a received packet reaches the sink: a plain call, no coroutine per packet
        (a failing sink is logged, as the transport's handlers are)."""
        self._media_ssrc = packet.ssrc
        sink = self._sink
        if sink is not None:
            try:
                sink(packet)
            except Exception:
                logger.exception("packet sink failed")

    def receive_unparsed(self, data: bytes, arrival_time_ms: int) -> bool:
        """Take a decrypted packet as bytes (see :mod:`media.aiortc_adapter.transport`).

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
            if remb is not None and self._RTCRtpReceiver__rtcp_ssrc is not None:  # type: ignore[attr-defined]
                self._own_remb(*remb)
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
        self._deliver(packet)
        return True

    def _own_remb(self, bitrate_bps: int, ssrcs: list[int]) -> None:
        """The estimator's REMB: to the listener, or to the publisher as aiortc would send it."""
        if self._remb_listener is not None:
            self._remb_listener(bitrate_bps, ssrcs)
        else:
            run_eagerly(self.send_remb(bitrate_bps, ssrcs))

    async def request_keyframe(self) -> bool:
        """Send a PLI to the publisher; ``False`` if no media arrived yet to address it to."""
        if self._media_ssrc is None:
            return False
        await self._send_rtcp_pli(self._media_ssrc)
        return True
