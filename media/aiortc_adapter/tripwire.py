"""The upgrade tripwire: are the internals still there, and does aiortc still receive as we do?

:func:`tripwire` builds a real (unconnected) forwarding peer connection, checks every name of
:data:`~media.aiortc_adapter.registry.INTERNALS` on its live objects, then runs one packet
sequence (a stream start, a two-packet gap, abs-send-time on every packet) through two
receivers: one by aiortc's own ``_handle_rtp_packet`` for every packet, one by
:meth:`~media.aiortc_adapter.receiver.ForwardingReceiver.receive_unparsed` after the first.
What reaches the sink, the REMBs the estimator produces and *every* piece of receiver state
must come out the same: a step aiortc adds to its receive path shows up as a difference, and
a cosmetic change to aiortc's source does not (run by
``tests/media/aiortc_adapter/test_adapter_tripwire.py``).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from aiortc import RTCConfiguration, RTCRtpReceiver
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpReceiveParameters,
)
from aiortc.rtcrtpreceiver import RemoteStreamTrack
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from media.aiortc_adapter.peer_connection import ForwardingPeerConnection
from media.aiortc_adapter.receiver import ForwardingReceiver, PacketSink
from media.aiortc_adapter.registry import missing_internals
from media.rtp_packing import ABS_SEND_TIME_URI

_SSRC = 0x1234ABCD
_PACKETS = 800  # the estimator makes its first REMB after about 3 s of them
_GAP = (150, 151)  # left out: the NACK generator must notice them
_PACKET_INTERVAL_MS = 5
_PAYLOAD = bytes([0x10, 0x00, 0x9D, 0x01, 0x2A]) + bytes(995)  # VP8 descriptor, then data
# Receiver state that differs between two receivers whatever the path (identities, tasks).
_NOT_COMPARED = frozenset(
    {
        "_RTCRtpReceiver__transport",
        "_RTCRtpReceiver__rtcp_task",
        "_RTCRtpReceiver__decoder_thread",
        "_RTCRtpReceiver__log_debug",
        "_RTCRtpReceiver__jitter_buffer",
        "_track",
        "_sink",
        "_remb_listener",
    }
)


# Read from the wall clock as each packet arrives (interarrival jitter), never equal in two runs.
_WALL_CLOCK = frozenset({"_last_arrival", "_jitter_q4"})


class _NoPreferences:
    def preferences_for(self, kind: str) -> list[Any]:
        return []


async def tripwire() -> list[str]:
    """Every problem found (empty when the installed aiortc/aioice behave as tested)."""
    pc = ForwardingPeerConnection(RTCConfiguration(), _NoPreferences())
    try:
        transceivers = [pc.addTransceiver("video", direction="recvonly") for _ in range(2)]
        receivers = [t.receiver for t in transceivers]
        problems = await _compare_receive_paths(receivers)
        dtls = receivers[0].transport
        gatherer = dtls.transport.iceGatherer
        objects = [transceivers[0], receivers[0], transceivers[0].sender, dtls, dtls.transport]
        objects += [gatherer, gatherer._connection, *problems.packets]
        return missing_internals(objects) + problems.found
    finally:
        await pc.close()


class _Outcome:
    def __init__(self) -> None:
        self.found: list[str] = []
        self.packets: list[RtpPacket] = []


async def _compare_receive_paths(receivers: list[RTCRtpReceiver]) -> _Outcome:
    outcome = _Outcome()
    vp8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
    rtx = RTCRtpCodecParameters(
        mimeType="video/rtx", clockRate=90000, payloadType=97, parameters={"apt": 96}
    )
    parameters = RTCRtpReceiveParameters(
        codecs=[vp8, rtx],
        headerExtensions=[RTCRtpHeaderExtensionParameters(id=3, uri=ABS_SEND_TIME_URI)],
    )
    extensions = HeaderExtensionsMap()
    extensions.configure(parameters)
    seen: list[list[tuple[object, ...]]] = [[], []]
    rembs: list[list[tuple[int, list[int]]]] = [[], []]
    forwarding = [r for r in receivers if isinstance(r, ForwardingReceiver)]
    if len(forwarding) != len(receivers):
        outcome.found.append("the peer connection did not swap its receivers' class")
        return outcome
    for index, receiver in enumerate(forwarding):
        receiver.set_sink(_collector(seen[index], outcome.packets if index == 0 else []))
        receiver.on_remb(_remb_collector(rembs[index]))
        receiver._track = RemoteStreamTrack(kind="video")  # as setRemoteDescription does
        await receiver.receive(parameters)
        receiver._set_rtcp_ssrc(1)
    aiortc_path, unparsed_path = forwarding
    for number in range(_PACKETS):
        if number in _GAP:
            continue
        arrival_ms = 1_000_000 + number * _PACKET_INTERVAL_MS
        packet = RtpPacket(96, number % 3 == 2, 1000 + number, 3000 * (number // 3), _SSRC)
        packet.payload = _PAYLOAD
        packet.extensions.abs_send_time = (number * _PACKET_INTERVAL_MS * 262) & 0xFFFFFF
        data = packet.serialize(extensions)
        await aiortc_path._handle_rtp_packet(RtpPacket.parse(data, extensions), arrival_ms)
        if number == 0:
            await unparsed_path._handle_rtp_packet(RtpPacket.parse(data, extensions), arrival_ms)
        elif not unparsed_path.receive_unparsed(data, arrival_ms):
            outcome.found.append(f"receive_unparsed refused packet {number}")
            return outcome
    if seen[0] != seen[1]:
        outcome.found.append("the sink got different packets from the two paths")
    if not rembs[0] or rembs[0] != rembs[1]:
        outcome.found.append(f"REMB differs or none was made: {rembs[0][:3]} {rembs[1][:3]}")
    states = [_receiver_state(r) for r in receivers]
    for name in sorted(set(states[0]) | set(states[1])):
        if name not in _NOT_COMPARED and states[0].get(name) != states[1].get(name):
            outcome.found.append(f"receiver state {name} differs between the paths")
    if not states[0].get("_RTCRtpReceiver__nack_generator"):
        outcome.found.append("the gap left no trace in the NACK generator")
    return outcome


def _remb_collector(into: list[tuple[int, list[int]]]) -> Callable[[int, list[int]], None]:
    def collect(bitrate_bps: int, ssrcs: list[int]) -> None:
        into.append((bitrate_bps, ssrcs))

    return collect


def _receiver_state(receiver: RTCRtpReceiver) -> dict[str, object]:
    return {name: _state(value) for name, value in vars(receiver).items()}


def _collector(into: list[tuple[object, ...]], keep: list[RtpPacket]) -> PacketSink:
    def sink(packet: RtpPacket) -> None:
        into.append(
            (
                packet.payload_type,
                packet.marker,
                packet.sequence_number,
                packet.timestamp,
                packet.ssrc,
                packet.payload,
                packet.padding_size,
                packet.extensions.abs_send_time,
                packet.extensions.audio_level,
            )
        )
        if not keep:
            keep.append(packet)

    return sink


def _state(value: object, depth: int = 0) -> object:
    """A comparable picture of ``value``: containers and plain objects opened up to a depth;
    what comes from the wall clock (source last-seen times, jitter) left out."""
    if isinstance(value, (bool, int, float, str, bytes, type(None))):
        return value
    if isinstance(value, (datetime.datetime, datetime.date)):
        return "<time>"
    if depth > 4:
        return type(value).__name__
    if isinstance(value, dict):
        return {str(k): _state(v, depth + 1) for k, v in value.items() if k not in _WALL_CLOCK}
    if isinstance(value, (list, tuple)):
        return [_state(v, depth + 1) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(repr(_state(v, depth + 1)) for v in value)
    attributes = getattr(value, "__dict__", None)
    if attributes is None or callable(value):
        return type(value).__name__
    return (type(value).__name__, _state(dict(attributes), depth + 1))
