"""The forwarding peer connection: aiortc's, with forwarding transceivers and stable numbering.

* Every transceiver aiortc creates (``__createTransceiver``, name-mangled) gets a
  :class:`~media.aiortc_adapter.receiver.ForwardingReceiver` and, unless told otherwise, a
  :class:`~media.aiortc_adapter.sender.ForwardingSender` (class swaps), and its codec
  preferences are set before codecs are negotiated.
* Opus carries no ``fmtp`` in aiortc's codec table, so after aiortc sets a transceiver's
  ``_codecs`` (in ``setRemoteDescription`` and ``createOffer``) every Opus entry gets
  :data:`~media.sdp_numbering.OPUS_FMTP`, and every m-section of our offers is described from
  those codecs: offers and answers, publisher and subscriber legs, say the same.
* ``createOffer`` resets every transceiver's ``_codecs`` and ``_headerExtensions`` to aiortc's
  default numbering, also for m-sections already negotiated: the negotiated ones are restored,
  new ones numbered around them (:class:`~media.sdp_numbering.BundleNumbering`) and the offer's
  m-sections rewritten to match (a new transceiver's found by ``_get_mline_index()``).
* Once connected, each transport's SRTP is received directly
  (:func:`~media.aiortc_adapter.transport.receive_directly`).
"""

from __future__ import annotations

from typing import Any, Protocol

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.codecs import is_rtx
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtptransceiver import RTCRtpTransceiver
from aiortc.sdp import MediaDescription, SessionDescription

from media.aiortc_adapter.receiver import ForwardingReceiver
from media.aiortc_adapter.sender import ForwardingSender
from media.aiortc_adapter.transport import receive_directly
from media.sdp_numbering import BundleNumbering, with_opus_fmtp


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
        (:mod:`media.aiortc_adapter.transport`)."""
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
        ForwardingReceiver.swap_class(transceiver.receiver)
        if self._forward_senders:
            ForwardingSender.swap_class(transceiver.sender)
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


def _describe_rtp(media: MediaDescription, transceiver: RTCRtpTransceiver) -> None:
    """Make an offer's m-section state the transceiver's codecs and extensions."""
    media.fmt = [codec.payloadType for codec in transceiver._codecs]
    media.rtp.codecs = transceiver._codecs
    media.rtp.headerExtensions = transceiver._headerExtensions
    if not any(is_rtx(codec) for codec in transceiver._codecs):
        media.ssrc = media.ssrc[:1]
        media.ssrc_group = []
