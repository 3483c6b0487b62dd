"""One participant's ``RTCPeerConnection`` with the server, with serialised offer/answer.

The client makes the first offer (its own tracks); the server offers whenever its subscriptions
for this participant change. Only one negotiation runs at a time: a client offer that arrives
while a server offer waits for its answer is refused with ``negotiation_in_progress`` (the
client is the polite peer and answers first). aiortc gathers all candidates before it answers,
so server candidates travel in the SDP; client candidates may trickle in at any time.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.rtcrtpparameters import RTCRtpCodecCapability, RTCRtpCodecParameters
from aiortc.rtcrtptransceiver import RTCRtpTransceiver
from aiortc.sdp import SessionDescription, candidate_from_sdp

from media.aiortc_adapter import (
    CandidatePath,
    ForwardingPeerConnection,
    ForwardingReceiver,
    ForwardingSender,
    announce_address,
    restrict_host_addresses,
    selected_path,
)
from media.config import MediaConfig
from media.errors import BadCandidate, BadSdp, NegotiationInProgress, TooManyCandidates

logger = logging.getLogger(__name__)

_SESSION_ID = re.compile(r"^o=\S+ (\S+) ", re.MULTILINE)
_MAX_SDP_MEDIA = 16


@dataclass(frozen=True)
class OfferedMedia:
    """One m-line of a client offer."""

    mid: str
    kind: str
    direction: str


@dataclass(frozen=True)
class OfferSummary:
    """What a client offer contains, read before anything is applied."""

    session_id: str
    media: tuple[OfferedMedia, ...]
    ice_ufrag: str = ""

    @property
    def sending(self) -> tuple[OfferedMedia, ...]:
        return tuple(m for m in self.media if m.direction in ("sendrecv", "sendonly"))


def summarize_offer(sdp: str) -> OfferSummary:
    """Parse a client offer; :class:`BadSdp` if it is not a usable audio/video offer."""
    try:
        description = SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc's parser raises many kinds on garbage input
        raise BadSdp(f"the offer could not be parsed ({type(exc).__name__})") from None
    match = _SESSION_ID.search(sdp)
    if match is None or not description.media:
        raise BadSdp("the offer has no origin line or no media")
    if len(description.media) > _MAX_SDP_MEDIA:
        raise BadSdp(f"the offer has more than {_MAX_SDP_MEDIA} media sections")
    media = []
    for item in description.media:
        if item.kind not in ("audio", "video") or not item.rtp.muxId:
            raise BadSdp(
                f"unsupported media section {item.kind!r} (audio and video with a mid only)"
            )
        if item.ice is None or item.dtls is None:
            raise BadSdp("a media section lacks ICE credentials or a DTLS fingerprint")
        media.append(OfferedMedia(item.rtp.muxId, item.kind, item.direction or "sendrecv"))
    # aiortc's origin line is time based (two peers made in one second share it), so the ICE
    # username fragment, new for every peer connection and ICE restart, tells sessions apart.
    first_ice = description.media[0].ice
    ufrag = (first_ice.usernameFragment if first_ice is not None else None) or ""
    return OfferSummary(f"{match.group(1)}/{ufrag}", tuple(media), ufrag)


class CodecPreferences:
    """Codec order for every transceiver: VP8 then H.264 for video, Opus first for audio."""

    def __init__(self, config: MediaConfig) -> None:
        self._order = {"video": config.video_codecs, "audio": config.audio_codecs}

    def preferences_for(self, kind: str) -> list[RTCRtpCodecCapability]:
        capabilities = RTCRtpSender.getCapabilities(kind).codecs
        order = [mime.lower() for mime in self._order.get(kind, ())]
        chosen = [c for mime in order for c in capabilities if c.mimeType.lower() == mime]
        chosen += [c for c in capabilities if c.mimeType.lower() == f"{kind}/rtx"]
        return chosen

    def publisher_first(self, kind: str, mime: str) -> list[RTCRtpCodecCapability]:
        """Offer the publisher's codec first so the subscriber can take it as it is."""
        preferred = self.preferences_for(kind)
        return sorted(preferred, key=lambda c: c.mimeType.lower() != mime.lower())


def _rtc_configuration(config: MediaConfig) -> RTCConfiguration:
    servers = [RTCIceServer(s.urls, s.username, s.credential) for s in config.ice_servers]
    return RTCConfiguration(iceServers=servers or None, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


class MediaPeer:
    """The server side of one participant's peer connection."""

    def __init__(
        self,
        consultation_id: str,
        participant_id: str,
        config: MediaConfig,
        codecs: CodecPreferences,
    ) -> None:
        self.consultation_id = consultation_id
        self.participant_id = participant_id
        self.session_id: str | None = None
        self.ice_ufrag: str | None = None
        self.renegotiation_needed = False
        self._config = config
        self._codecs = codecs
        self.pc = ForwardingPeerConnection(_rtc_configuration(config), codecs)
        self._lock = asyncio.Lock()
        self._awaiting_answer = False
        self._early_candidates: list[Any] = []
        self._remote_candidates = 0
        self._closed = False

    @property
    def connection_state(self) -> str:
        return str(self.pc.connectionState)

    @property
    def negotiated(self) -> bool:
        """Whether a client offer has been applied (the connection has media sections)."""
        return self.pc.remoteDescription is not None

    def on_state_change(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(connection_state)`` whenever the connection state changes."""
        self.pc.on("connectionstatechange", lambda: callback(self.connection_state))

    async def stats_report(self) -> dict[str, Any]:
        """aiortc's statistics of the connection, by id."""
        return dict(await self.pc.getStats())

    def selected_path(self) -> CandidatePath | None:
        """The candidate pair the server's ICE agent nominated, ``None`` before that."""
        return selected_path(self.pc)

    def answered_codecs(self) -> dict[str, RTCRtpCodecParameters]:
        """The first codec of each m-line of our answer, by mid: what the publisher sends."""
        description = self.pc.localDescription
        if description is None:
            return {}
        parsed = SessionDescription.parse(description.sdp)
        return {m.rtp.muxId: m.rtp.codecs[0] for m in parsed.media if m.rtp.codecs}

    async def answer(self, sdp: str) -> str:
        """Apply a client offer and return the server's answer."""
        if self._awaiting_answer:
            raise NegotiationInProgress()
        async with self._lock:
            if self._awaiting_answer:
                raise NegotiationInProgress()
            await self._set_remote(sdp, "offer")
            answer = await self.pc.createAnswer()
            restrict_host_addresses(self.pc, self._config.media_ips, self._config.udp_ports)
            await self.pc.setLocalDescription(answer)
            logger.info(
                "answered offer consultation=%s participant=%s",
                self.consultation_id,
                self.participant_id,
            )
            return announce_address(self.pc.localDescription.sdp, self._config.announced_ip)

    def add_sendonly(
        self, kind: str, publisher_mime: str
    ) -> tuple[RTCRtpTransceiver, ForwardingSender]:
        """A new transceiver that forwards one publisher track to this participant."""
        transceiver = self.pc.addTransceiver(kind, direction="sendonly")
        transceiver.setCodecPreferences(self._codecs.publisher_first(kind, publisher_mime))
        sender = transceiver.sender
        assert isinstance(sender, ForwardingSender)
        self.renegotiation_needed = True
        return transceiver, sender

    async def create_offer(self) -> str | None:
        """A server offer if renegotiation is needed and possible now, else ``None``."""
        async with self._lock:
            if self._closed or self._awaiting_answer or not self.renegotiation_needed:
                return None
            if self.pc.signalingState != "stable" or self.pc.remoteDescription is None:
                return None
            self.renegotiation_needed = False
            offer = await self.pc.createOffer()
            restrict_host_addresses(self.pc, self._config.media_ips, self._config.udp_ports)
            await self.pc.setLocalDescription(offer)
            self._awaiting_answer = True
            logger.info(
                "server offer consultation=%s participant=%s",
                self.consultation_id,
                self.participant_id,
            )
            return announce_address(self.pc.localDescription.sdp, self._config.announced_ip)

    async def accept_answer(self, sdp: str) -> None:
        """Apply the client's answer to the pending server offer."""
        async with self._lock:
            if not self._awaiting_answer:
                raise BadSdp("there is no server offer waiting for an answer")
            await self._set_remote(sdp, "answer")
            self._awaiting_answer = False

    async def add_candidate(self, candidate: dict[str, Any] | None) -> None:
        """Add a trickled client candidate (``None`` or an empty one ends the candidates)."""
        parsed = None
        if self._remote_candidates >= self._config.max_remote_candidates:
            raise TooManyCandidates()
        self._remote_candidates += 1
        if candidate is not None and candidate.get("candidate"):
            text = str(candidate["candidate"])
            text = text[len("candidate:") :] if text.startswith("candidate:") else text
            try:
                parsed = candidate_from_sdp(text)
            except Exception as exc:  # aiortc's parser asserts, indexes and converts blindly
                raise BadCandidate(
                    f"the candidate could not be parsed ({type(exc).__name__})"
                ) from None
            parsed.sdpMid = candidate.get("sdpMid")
            parsed.sdpMLineIndex = candidate.get("sdpMLineIndex")
            if parsed.sdpMid is None and parsed.sdpMLineIndex is None:
                parsed.sdpMLineIndex = 0
        if self.pc.remoteDescription is None:
            self._early_candidates.append(parsed)
            return
        await self._add_parsed(parsed)

    async def _add_parsed(self, parsed: Any) -> None:
        try:
            await self.pc.addIceCandidate(parsed)
        except (ValueError, AttributeError) as exc:
            raise BadCandidate(f"the candidate was refused ({type(exc).__name__})") from None

    def receivers(self) -> list[tuple[RTCRtpTransceiver, ForwardingReceiver]]:
        return [
            (t, t.receiver)
            for t in self.pc.getTransceivers()
            if isinstance(t.receiver, ForwardingReceiver)
        ]

    async def close(self) -> None:
        """Close the peer connection (idempotent)."""
        if self._closed:
            return
        self._closed = True
        await self.pc.close()
        logger.info(
            "peer closed consultation=%s participant=%s", self.consultation_id, self.participant_id
        )

    async def _set_remote(self, sdp: str, kind: str) -> None:
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
        except Exception as exc:  # aiortc raises ValueError, InvalidStateError, OperationError...
            logger.info(
                "remote %s refused consultation=%s participant=%s error=%s",
                kind,
                self.consultation_id,
                self.participant_id,
                type(exc).__name__,
            )
            raise BadSdp(f"the {kind} could not be applied: {exc}"[:200]) from None
        if kind == "offer":
            summary = summarize_offer(sdp)
            self.session_id = summary.session_id
            self.ice_ufrag = summary.ice_ufrag
        early, self._early_candidates = self._early_candidates, []
        for parsed in early:
            await self._add_parsed(parsed)
