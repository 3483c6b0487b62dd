"""Read-outs of and hooks into plain aiortc objects, for tests and benchmarks only.

Attributes are read and instance methods replaced through ``vars()``: aiortc declares none of
them, so attribute syntax would only need a type checker exemption each.

Test clients stand in for browsers (re-NACKs, keyframe requests on a stall), and tests look at
what aiortc keeps private (negotiated codecs, the encoder's rate, which threads decode). The
relay itself uses none of this; keeping it here keeps every private name in one package.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from typing import Any

from aiortc import RTCIceTransport, RTCRtpReceiver, RTCRtpSender
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import NackGenerator, StreamStatistics
from aiortc.rtp import AnyRtcpPacket

from media.aiortc_adapter.sender import ForwardingSender


def sender_ssrc(sender: RTCRtpSender) -> int:
    """The SSRC a sender's media goes out with."""
    return int(sender._ssrc)


def sender_encoder(sender: RTCRtpSender) -> Any:
    """aiortc's encoder of a (non-forwarding) sender, ``None`` before its first frame."""
    return vars(sender)["_RTCRtpSender__encoder"]


def negotiated_codecs(receiver: RTCRtpReceiver) -> list[RTCRtpCodecParameters]:
    """The codecs a receiver was started with."""
    codecs: dict[int, RTCRtpCodecParameters] = vars(receiver)["_RTCRtpReceiver__codecs"]
    return list(codecs.values())


def decoder_thread(receiver: RTCRtpReceiver) -> threading.Thread | None:
    """The receiver's decoder thread, ``None`` when it has none."""
    thread: threading.Thread | None = vars(receiver)["_RTCRtpReceiver__decoder_thread"]
    return thread


def frame_queue(track: MediaStreamTrack) -> asyncio.Queue[Any]:
    """The queue a remote track's decoded frames arrive in (identifies the track's decoder)."""
    queue: asyncio.Queue[Any] = vars(track)["_queue"]
    return queue


def receive_statistics(receiver: RTCRtpReceiver) -> Mapping[int, StreamStatistics]:
    """Receive statistics by SSRC (what the receiver reports are made from)."""
    streams: dict[int, StreamStatistics] = vars(receiver)["_RTCRtpReceiver__remote_streams"]
    return streams


def nack_generator(receiver: RTCRtpReceiver) -> NackGenerator | None:
    """The receiver's NACK generator (``None`` for audio)."""
    generator: NackGenerator | None = vars(receiver)["_RTCRtpReceiver__nack_generator"]
    return generator


async def send_nack(receiver: RTCRtpReceiver, media_ssrc: int, lost: list[int]) -> None:
    await receiver._send_rtcp_nack(media_ssrc, lost)


async def send_pli(receiver: RTCRtpReceiver, media_ssrc: int) -> None:
    await receiver._send_rtcp_pli(media_ssrc)


async def send_rtcp(receiver: RTCRtpReceiver, packet: AnyRtcpPacket) -> None:
    """Send any RTCP packet from a receiver (a test REMB, say)."""
    await receiver._send_rtcp(packet)


def nominated_pairs(ice: RTCIceTransport) -> Mapping[int, Any]:
    """ICE's nominated candidate pair by component (aioice ``CandidatePair``)."""
    pairs: dict[int, Any] = ice._connection._nominated
    return pairs


def observe_rtcp(sender: RTCRtpSender, observe: Callable[[AnyRtcpPacket], None]) -> None:
    """Call ``observe`` with every RTCP packet the sender gets, before aiortc handles it."""
    handle = sender._handle_rtcp_packet

    async def observed(packet: AnyRtcpPacket) -> None:
        observe(packet)
        await handle(packet)

    vars(sender)["_handle_rtcp_packet"] = observed


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call ``callback`` instead of aiortc's own handling when the far end asks a (plain)
    sender for a keyframe (PLI or FIR)."""
    vars(sender)["_send_keyframe"] = callback


def lose_rtp_out(sender: RTCRtpSender, lost: Callable[[bytes], bool]) -> None:
    """Drop each outgoing RTP packet of the sender (and, for a client's sender, of its
    transport) for which ``lost(data)`` is true: forwarded packets leave by
    ``ForwardingSender._transmit``, a client's by its DTLS transport's ``_send_rtp``."""
    if isinstance(sender, ForwardingSender):
        transmit = sender._transmit

        def transmit_unless_lost(data: bytes) -> None:
            if not lost(data):
                transmit(data)

        vars(sender)["_transmit"] = transmit_unless_lost
        return
    transport = sender.transport
    send_rtp = transport._send_rtp

    async def send_rtp_unless_lost(data: bytes) -> None:
        if not lost(data):
            await send_rtp(data)

    vars(transport)["_send_rtp"] = send_rtp_unless_lost


def observe_retransmissions(
    observe: Callable[[RTCRtpSender, int], None],
) -> Callable[[], None]:
    """Call ``observe(sender, sequence)`` whenever any sender resends a packet (server's and
    clients'); returns the function that stops it."""
    real = RTCRtpSender._retransmit

    async def retransmit(self: RTCRtpSender, sequence_number: int) -> None:
        observe(self, sequence_number)
        await real(self, sequence_number)

    RTCRtpSender._retransmit = retransmit  # type: ignore[method-assign]

    def stop() -> None:
        RTCRtpSender._retransmit = real  # type: ignore[method-assign]

    return stop
