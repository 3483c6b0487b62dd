"""Payload types and header-extension ids of one BUNDLE group: pure SDP numbering.

Used by the peer connection (:mod:`media.aiortc_adapter.peer_connection`) when it re-offers:
JSEP (RFC 8829 5.2.2) has subsequent offers keep the numbers of existing m-sections, and in one
BUNDLE group one number has one meaning (RFC 8843 7.5.1).
"""

from __future__ import annotations

import copy

from aiortc.codecs import is_rtx
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpHeaderExtensionParameters
from aiortc.rtp import DYNAMIC_PAYLOAD_TYPES

_EXTENSION_IDS = range(1, 15)  # one-byte header extensions (RFC 8285)

# In-band FEC lets the listener rebuild a lost 20 ms frame from the next packet (what weak,
# lossy links need); DTX sends one packet per 400 ms in silence instead of 50 a second, leaving
# the link to the other party's speech and video. Both state what the server, as the receiver of
# every publisher, wants; in one BUNDLE group one payload type has one meaning (RFC 8843), so
# subscriber m-sections carry the same parameters.
OPUS_FMTP: dict[str, int] = {"useinbandfec": 1, "usedtx": 1}


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
