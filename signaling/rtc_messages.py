"""Payload models of the ``rtc.*`` client events (see docs/protocol.md, "Media events")."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

ConsultationId = Annotated[str, Field(min_length=1, max_length=128)]
Sdp = Annotated[str, Field(min_length=1, max_length=60_000)]
MediaSource = Literal["camera", "microphone", "screen"]


class _Strict(BaseModel):
    """No coercion (``1`` is not a bool, ``"3"`` not an int) and no unknown fields."""

    model_config = ConfigDict(extra="forbid", strict=True)


class TrackSource(_Strict):
    """Which source an m-line of the client's offer carries."""

    mid: str = Field(min_length=1, max_length=32)
    source: MediaSource


class RtcOffer(_Strict):
    consultation_id: ConsultationId
    sdp: Sdp
    sources: list[TrackSource] | None = Field(default=None, max_length=8)


class RtcAnswer(_Strict):
    consultation_id: ConsultationId
    sdp: Sdp


class IceCandidate(_Strict):
    """``RTCIceCandidate.toJSON()`` of a browser."""

    candidate: str = Field(max_length=1024)
    sdpMid: str | None = Field(default=None, max_length=32)  # noqa: N815 - browser field name
    sdpMLineIndex: int | None = Field(default=None, ge=0, le=64)  # noqa: N815
    usernameFragment: str | None = Field(default=None, max_length=256)  # noqa: N815


class RtcCandidate(_Strict):
    consultation_id: ConsultationId
    candidate: IceCandidate | None


class RtcMediaState(_Strict):
    consultation_id: ConsultationId
    source: MediaSource
    muted: bool


class RtcReceiveMode(_Strict):
    consultation_id: ConsultationId
    video: bool


class RtcPath(_Strict):
    """The browser's selected ICE candidate pair: its local candidate's type and transport."""

    consultation_id: ConsultationId
    candidate_type: Literal["host", "srflx", "prflx", "relay"]
    protocol: Literal["udp", "tcp"]
    relay_protocol: Literal["udp", "tcp", "tls"] | None = None
