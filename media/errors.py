"""Media errors with fixed codes (``signaling.errors`` turns them into wire payloads)."""

from __future__ import annotations

from rooms.errors import DomainError


class BadSdp(DomainError):
    code = "bad_sdp"
    default_message = "the session description could not be used"


class NegotiationInProgress(DomainError):
    code = "negotiation_in_progress"
    default_message = "the server's offer is waiting for your answer; answer it first"


class UnknownTrack(DomainError):
    code = "unknown_track"
    default_message = "no such track"


class NoMediaSession(DomainError):
    code = "no_media_session"
    default_message = "send rtc.offer first"


class RoomFull(DomainError):
    code = "room_full"
    default_message = "this consultation has as many media participants as it can take"


class BadCandidate(DomainError):
    code = "bad_candidate"
    default_message = "the ICE candidate could not be parsed"


class TooManyCandidates(DomainError):
    code = "too_many_candidates"
    default_message = "this media session already has as many ICE candidates as it takes"
