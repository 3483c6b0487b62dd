"""Every private aiortc/aioice name the adapter uses, in one table, and the check that they exist.

Written for and tested with aiortc 1.16.x (``pyproject.toml`` pins it) and the aioice 0.13.x
it brings.
Each :class:`Internal` says where a name lives, whether it is a method (checked on the class,
with its leading parameter names when they matter) or an attribute (checked on a live object),
and what the adapter does with it. Besides these names the adapter swaps the class of every
receiver and sender aiortc creates for a peer connection (a subclass that overrides the methods
listed) and replaces three methods on live objects (marked "replaced on the instance").

Names alone cannot show that aiortc still *does* the same thing with them:
:mod:`media.aiortc_adapter.tripwire` runs packets through a real receiver for the part copied
from aiortc (the receive path), and the media tests cover the rest.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from aioice import ice as aioice_ice
from aioice.ice import Connection, StunProtocol
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcicetransport import RTCIceGatherer, RTCIceTransport
from aiortc.rtcrtptransceiver import RTCRtpTransceiver
from aiortc.rtp import RtpPacket

AIORTC_TESTED = "1.16"
AIOICE_TESTED = "0.13"


@dataclass(frozen=True)
class Internal:
    """One private name: ``owner.name``, a ``method`` or an ``attribute``, and its use."""

    owner: type | object
    name: str
    kind: Literal["method", "attribute"]
    use: str
    parameters: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        owner = getattr(self.owner, "__qualname__", None) or getattr(self.owner, "__name__", "?")
        return f"{owner}.{self.name}"


def _receiver(name: str, kind: Literal["method", "attribute"], use: str) -> Internal:
    return Internal(RTCRtpReceiver, name, kind, use)


def _sender(name: str, kind: Literal["method", "attribute"], use: str) -> Internal:
    return Internal(RTCRtpSender, name, kind, use)


def _dtls(name: str, kind: Literal["method", "attribute"], use: str) -> Internal:
    return Internal(RTCDtlsTransport, name, kind, use)


def _ice(name: str, kind: Literal["method", "attribute"], use: str) -> Internal:
    return Internal(Connection, name, kind, use)


INTERNALS: tuple[Internal, ...] = (
    # peer_connection.py
    Internal(
        RTCPeerConnection,
        "_RTCPeerConnection__createTransceiver",
        "method",
        "overridden: swaps receiver/sender classes, sets codec preferences",
        ("self", "direction", "kind", "sender_track"),
    ),
    Internal(RTCRtpTransceiver, "_codecs", "attribute", "read and restored around createOffer"),
    Internal(RTCRtpTransceiver, "_headerExtensions", "attribute", "read and restored likewise"),
    Internal(RTCRtpTransceiver, "_get_mline_index", "method", "finds a new m-section"),
    # receiver.py
    _receiver("_RTCRtpReceiver__jitter_buffer", "attribute", "replaced by a pass-through"),
    _receiver("_handle_rtp_packet", "method", "aiortc's receive path, copied by receive_unparsed"),
    _receiver("_enabled", "attribute", "read by receive_unparsed"),
    _receiver("_RTCRtpReceiver__remote_streams", "attribute", "receive statistics, fed"),
    _receiver("_RTCRtpReceiver__remote_bitrate_estimator", "attribute", "fed (REMB)"),
    _receiver("_RTCRtpReceiver__active_ssrc", "attribute", "written (last-seen time)"),
    _receiver("_RTCRtpReceiver__nack_generator", "attribute", "fed; its misses are NACKed"),
    _receiver("_RTCRtpReceiver__rtcp_ssrc", "attribute", "sender SSRC of our REMB"),
    _receiver("_RTCRtpReceiver__decoder_thread", "attribute", "read by inspection (tests)"),
    _receiver("_RTCRtpReceiver__stop_decoder", "method", "called after receive()"),
    _receiver("_RTCRtpReceiver__codecs", "attribute", "read by inspection (tests)"),
    _receiver("_send_rtcp", "method", "overridden: REMB to the listener; called"),
    _receiver("_send_rtcp_nack", "method", "called by receive_unparsed and inspection"),
    _receiver("_send_rtcp_pli", "method", "called for keyframe requests"),
    _receiver("_set_rtcp_ssrc", "method", "called by the tripwire"),
    _receiver("_track", "attribute", "set by the tripwire, as setRemoteDescription does"),
    Internal(RtpPacket, "_data", "attribute", "codec data, as aiortc's depayload step sets it"),
    # sender.py
    _sender("_run_rtp", "method", "overridden: waits instead of encoding"),
    _sender("_RTCRtpSender__rtp_started", "attribute", "set by _run_rtp (stop() waits on it)"),
    _sender("_RTCRtpSender__rtp_exited", "attribute", "set by _run_rtp (stop() waits on it)"),
    _sender("_send_keyframe", "method", "overridden: a subscriber's PLI/FIR"),
    _sender("_handle_rtcp_packet", "method", "overridden: REMB and receiver reports"),
    _sender("_send_rtcp", "method", "overridden: sender report send times"),
    _sender("_retransmit", "method", "overridden: NACKs queued; called to resend"),
    _sender("_ssrc", "attribute", "the SSRC of forwarded packets"),
    _sender("_stream_id", "attribute", "written: the msid the subscriber sees"),
    _sender("_track_id", "attribute", "written: the msid the subscriber sees"),
    _sender("_RTCRtpSender__rtp_history", "attribute", "a NACKed packet is put back here"),
    _sender("_RTCRtpSender__rtp_header_extensions_map", "attribute", "parses a NACKed packet"),
    _sender("_RTCRtpSender__rtt", "attribute", "written from media.rtt"),
    _sender("_RTCRtpSender__lsr", "attribute", "cleared: aiortc computes no RTT"),
    _sender("_RTCRtpSender__ntp_timestamp", "attribute", "sender report: written"),
    _sender("_RTCRtpSender__rtp_timestamp", "attribute", "sender report: written"),
    _sender("_RTCRtpSender__octet_count", "attribute", "sender report: counted"),
    _sender("_RTCRtpSender__packet_count", "attribute", "sender report: counted"),
    _sender("_RTCRtpSender__encoder", "attribute", "read by inspection (tests)"),
    # transport.py
    _dtls("_send_rtp", "method", "sends where the direct path does not apply"),
    _dtls("_state", "attribute", "read: connected?"),
    _dtls("_rx_srtp", "attribute", "unprotects received SRTP/SRTCP"),
    _dtls("_tx_srtp", "attribute", "protects sent RTP"),
    _dtls("_handle_rtp_data", "method", "called for packets not taken unparsed"),
    _dtls("_handle_rtcp_data", "method", "called for SRTCP"),
    _dtls("_rtp_router", "attribute", "its ssrc_table finds a packet's receiver"),
    _dtls("_RTCDtlsTransport__rx_bytes", "attribute", "counted"),
    _dtls("_RTCDtlsTransport__rx_packets", "attribute", "counted"),
    _dtls("_RTCDtlsTransport__tx_bytes", "attribute", "counted"),
    _dtls("_RTCDtlsTransport__tx_packets", "attribute", "counted"),
    Internal(RTCIceTransport, "_connection", "attribute", "aioice's Connection"),
    Internal(
        Connection,
        "data_received",
        "method",
        "replaced on the instance",
        ("self", "data", "component"),
    ),
    _ice("_queue", "attribute", "backlog taken out when receiving directly"),
    _ice("_nominated", "attribute", "the nominated pair, sent through directly"),
    Internal(
        StunProtocol,
        "datagram_received",
        "method",
        "replaced on the nominated pair's protocol",
        ("self", "data", "addr"),
    ),
    # ice.py
    Internal(RTCIceGatherer, "_connection", "attribute", "aioice's Connection"),
    _ice("gather_candidates", "method", "replaced on the instance"),
    _ice("_local_candidates_start", "attribute", "written by our gathering"),
    _ice("_local_candidates_end", "attribute", "written by our gathering"),
    _ice("_local_candidates", "attribute", "extended by our gathering"),
    _ice("_components", "attribute", "read by our gathering"),
    _ice("_protocols", "attribute", "a protocol bound in the port range is added"),
    _ice("_use_ipv4", "attribute", "read by our gathering"),
    _ice("_use_ipv6", "attribute", "read by our gathering"),
    Internal(aioice_ice, "server_reflexive_candidate", "method", "called (port range + STUN)"),
    Internal(aioice_ice, "get_host_addresses", "method", "called by our gathering"),
)


def missing_internals(objects: Iterable[object]) -> list[str]:
    """The :data:`INTERNALS` the installed aiortc/aioice lack, checked on ``objects``.

    Methods are looked up on their owner; attributes need a live instance of the owner among
    ``objects`` (one not given is reported too, so nothing goes unchecked).
    """
    live = list(objects)
    problems: list[str] = []
    for internal in INTERNALS:
        if internal.kind == "method":
            found = getattr(internal.owner, internal.name, None)
            if not callable(found):
                problems.append(f"{internal.label}: missing")
            elif internal.parameters:
                names = tuple(inspect.signature(found).parameters)[: len(internal.parameters)]
                if names != internal.parameters:
                    problems.append(f"{internal.label}: parameters {names}")
            continue
        owner = internal.owner
        instance = next((o for o in live if isinstance(owner, type) and isinstance(o, owner)), None)
        if instance is None:
            problems.append(f"{internal.label}: no live instance given to check")
        elif not hasattr(instance, internal.name):
            problems.append(f"{internal.label}: missing")
    return problems
