"""The ``rtc.*`` events: WebRTC negotiation with this node's media router over Socket.IO.

Handlers check membership through a small :class:`Membership` protocol (the consultation
service's ``require_participant``) and call the :class:`~media.router.MediaRouter`.
:class:`RtcSignals` carries the router's own messages (server offers, track labels, stats) back
to participants by subject, and tells a participant when video to it is paused for a weak
connection (``rtc.link_state``).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from media.downlink import LinkState
from media.router import MediaRegistry
from media.stats import ClientPath, ParticipantStats
from rooms.roles import PARTICIPANT_ROLES, Role
from signaling.auth import Identity
from signaling.dispatch import Ack, Caller, EventSpec, event
from signaling.rtc_messages import (
    RtcAnswer,
    RtcCandidate,
    RtcMediaState,
    RtcOffer,
    RtcPath,
    RtcReceiveMode,
)

logger = logging.getLogger(__name__)


class MemberLike(Protocol):
    @property
    def participant_id(self) -> str: ...

    @property
    def role(self) -> Role: ...


class Membership(Protocol):
    """Who is an admitted participant of an active consultation."""

    async def require_participant(self, consultation_id: str, identity: Any) -> MemberLike: ...


class SubjectEmitter(Protocol):
    """Sends an event to every connection of one subject (the rooms notifier fits)."""

    async def to_subject(self, subject: str, event: str, payload: dict[str, Any]) -> None: ...


class RtcSignals:
    """The router's outgoing messages as Socket.IO events; stats go to the clinicians only."""

    def __init__(self, emitter: SubjectEmitter) -> None:
        self._emitter = emitter
        self._clinicians: dict[str, set[str]] = {}

    def note_member(self, consultation_id: str, member: MemberLike) -> None:
        if member.role.is_clinician:
            self._clinicians.setdefault(consultation_id, set()).add(member.participant_id)

    def forget(self, consultation_id: str, participant_id: str | None = None) -> None:
        if participant_id is None:
            self._clinicians.pop(consultation_id, None)
        else:
            self._clinicians.get(consultation_id, set()).discard(participant_id)

    async def send_offer(self, consultation_id: str, participant_id: str, sdp: str) -> None:
        await self._emitter.to_subject(
            participant_id, "rtc.offer", {"consultation_id": consultation_id, "sdp": sdp}
        )

    async def send_tracks(
        self, consultation_id: str, participant_id: str, tracks: list[dict[str, Any]]
    ) -> None:
        await self._emitter.to_subject(
            participant_id, "rtc.tracks", {"consultation_id": consultation_id, "tracks": tracks}
        )

    async def send_stats(self, consultation_id: str, stats: list[ParticipantStats]) -> None:
        payload = {
            "consultation_id": consultation_id,
            "participants": [figures.as_wire() for figures in stats],
        }
        for clinician in sorted(self._clinicians.get(consultation_id, ())):
            await self._emitter.to_subject(clinician, "rtc.stats", payload)

    async def send_link_state(
        self, consultation_id: str, participant_id: str, state: LinkState
    ) -> None:
        await self._emitter.to_subject(
            participant_id, "rtc.link_state", state.as_wire(consultation_id)
        )

    async def send_media_state(
        self,
        consultation_id: str,
        recipients: list[str],
        participant_id: str,
        source: str,
        muted: bool,
    ) -> None:
        payload = {
            "consultation_id": consultation_id,
            "participant_id": participant_id,
            "source": source,
            "muted": muted,
        }
        for recipient in recipients:
            await self._emitter.to_subject(recipient, "rtc.media_state", payload)


class RtcEvents:
    """Handlers of the client's ``rtc.*`` events, and the rooms listener that closes media."""

    def __init__(
        self, registry: MediaRegistry, membership: Membership, signals: RtcSignals
    ) -> None:
        self._registry = registry
        self._membership = membership
        self._signals = signals

    def specs(self) -> list[EventSpec[Any]]:
        return [
            event("rtc.offer", RtcOffer, PARTICIPANT_ROLES, self.offer),
            event("rtc.answer", RtcAnswer, PARTICIPANT_ROLES, self.answer),
            event("rtc.candidate", RtcCandidate, PARTICIPANT_ROLES, self.candidate),
            event("rtc.media_state", RtcMediaState, PARTICIPANT_ROLES, self.media_state),
            event("rtc.receive_mode", RtcReceiveMode, PARTICIPANT_ROLES, self.receive_mode),
            event("rtc.path", RtcPath, PARTICIPANT_ROLES, self.path),
        ]

    async def _member(self, consultation_id: str, identity: Identity) -> MemberLike:
        member = await self._membership.require_participant(consultation_id, identity)
        self._signals.note_member(consultation_id, member)
        return member

    async def offer(self, caller: Caller, message: RtcOffer) -> Ack:
        member = await self._member(message.consultation_id, caller.identity)
        router = self._registry.router(message.consultation_id)
        sources = {s.mid: s.source for s in message.sources} if message.sources else None
        sdp = await router.handle_offer(member.participant_id, message.sdp, sources)
        return {"ok": {"sdp": sdp}}

    async def answer(self, caller: Caller, message: RtcAnswer) -> Ack:
        member = await self._member(message.consultation_id, caller.identity)
        await self._registry.router(message.consultation_id).handle_answer(
            member.participant_id, message.sdp
        )
        return {"ok": True}

    async def candidate(self, caller: Caller, message: RtcCandidate) -> Ack:
        member = await self._member(message.consultation_id, caller.identity)
        candidate = message.candidate.model_dump() if message.candidate else None
        await self._registry.router(message.consultation_id).add_candidate(
            member.participant_id, candidate
        )
        return {"ok": True}

    async def media_state(self, caller: Caller, message: RtcMediaState) -> Ack:
        member = await self._member(message.consultation_id, caller.identity)
        router = self._registry.router(message.consultation_id)
        router.set_muted(member.participant_id, message.source, message.muted)
        others = [p for p in router.participant_ids if p != member.participant_id]
        await self._signals.send_media_state(
            message.consultation_id, others, member.participant_id, message.source, message.muted
        )
        return {"ok": True}

    async def receive_mode(self, caller: Caller, message: RtcReceiveMode) -> Ack:
        member = await self._member(message.consultation_id, caller.identity)
        self._registry.router(message.consultation_id).set_video_receive(
            member.participant_id, message.video
        )
        return {"ok": True}

    async def path(self, caller: Caller, message: RtcPath) -> Ack:
        member = await self._member(message.consultation_id, caller.identity)
        path = ClientPath(message.candidate_type, message.protocol, message.relay_protocol)
        self._registry.router(message.consultation_id).set_client_path(member.participant_id, path)
        return {"ok": True}

    async def on_participant_left(self, consultation_id: str, participant_id: str) -> None:
        self._signals.forget(consultation_id, participant_id)
        await self._registry.remove_participant(consultation_id, participant_id)

    async def on_consultation_ended(self, consultation_id: str) -> None:
        self._signals.forget(consultation_id)
        await self._registry.close_router(consultation_id)

    async def on_consent_withdrawn(self, consultation_id: str) -> None:
        """Recording reacts to this; media keeps flowing."""
