"""REMB (receiver estimated maximum bitrate) packets: the one place they are built and read."""

from __future__ import annotations

from aiortc.rtp import RTCP_PSFB_APP, AnyRtcpPacket, RtcpPsfbPacket, pack_remb_fci, unpack_remb_fci


def remb_packet(sender_ssrc: int, bitrate_bps: int, ssrcs: list[int]) -> RtcpPsfbPacket:
    """A REMB from ``sender_ssrc`` asking for ``bitrate_bps`` over the streams ``ssrcs``."""
    return RtcpPsfbPacket(
        fmt=RTCP_PSFB_APP,
        ssrc=sender_ssrc,
        media_ssrc=0,
        fci=pack_remb_fci(bitrate_bps, ssrcs),
    )


def read_remb(packet: AnyRtcpPacket) -> tuple[int, list[int]] | None:
    """``(bitrate_bps, ssrcs)`` of a REMB; ``None`` for any other packet or a malformed REMB."""
    if not isinstance(packet, RtcpPsfbPacket) or packet.fmt != RTCP_PSFB_APP:
        return None
    try:
        return unpack_remb_fci(packet.fci)
    except ValueError:
        return None
