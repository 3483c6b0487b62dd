"""Telling clients (through the notifier) and listeners (media, recording) what changed."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

from rooms.models import Consultation, ConsultationState
from rooms.notify import ConsultationListener, Notifier, VisitListener
from rooms.rules import audience

logger = logging.getLogger(__name__)


class Announcer:
    """The notifier and the registered consultation listeners, behind domain-shaped calls."""

    def __init__(self, notifier: Notifier) -> None:
        self._notifier = notifier
        self._listeners: list[ConsultationListener] = []
        self._visit_listeners: list[VisitListener] = []

    def add_listener(self, listener: ConsultationListener) -> None:
        """Register media/recording hooks (participant left, ended, consent withdrawn)."""
        self._listeners.append(listener)

    def add_visit_listener(self, listener: VisitListener) -> None:
        """Register the records' keeper of visits."""
        self._visit_listeners.append(listener)

    async def visit_changed(self, consultation: Consultation) -> None:
        """A milestone the records keep; a failure is logged, the request it follows stands."""
        for listener in self._visit_listeners:
            await _safely(
                listener.on_visit_changed(consultation), "visit_changed", consultation.id
            )

    async def to_subject(self, subject: str, event: str, payload: dict[str, Any]) -> None:
        await self._notifier.to_subject(subject, event, payload)

    async def to_service(self, service: str, event: str, payload: dict[str, Any]) -> None:
        await self._notifier.to_service(service, event, payload)

    async def to_admins(self, event: str, payload: dict[str, Any]) -> None:
        await self._notifier.to_admins(event, payload)

    async def updated(self, consultation: Consultation, skip: str | None = None) -> None:
        """``consultation.updated`` to its audience (but ``skip``, who already has it)."""
        payload = {"consultation": consultation.to_wire()}
        for subject in audience(consultation):
            if subject != skip:
                await self._notifier.to_subject(subject, "consultation.updated", payload)

    async def offer_withdrawn(self, clinician_id: str, consultation_id: str, reason: str) -> None:
        await self._notifier.to_subject(
            clinician_id,
            "consultation.offer_withdrawn",
            {"consultation_id": consultation_id, "reason": reason},
        )

    async def participant_left(self, consultation_id: str, participant_id: str) -> None:
        """A participant is finally gone: listeners drop its media."""
        for listener in self._listeners:
            await _safely(
                listener.on_participant_left(consultation_id, participant_id),
                "participant_left",
                consultation_id,
            )

    async def consent_withdrawn(self, consultation_id: str) -> None:
        for listener in self._listeners:
            await _safely(
                listener.on_consent_withdrawn(consultation_id), "consent_withdrawn", consultation_id
            )

    async def ended(self, before: Consultation, after: Consultation) -> None:
        """The consultation ended: a pending offer is withdrawn, listeners stop, everyone hears."""
        if before.state is ConsultationState.OFFERED and before.offered_to:
            await self.offer_withdrawn(before.offered_to, after.id, "ended")
        for listener in self._listeners:
            await _safely(listener.on_consultation_ended(after.id), "consultation_ended", after.id)
        payload = {
            "consultation_id": after.id,
            "reason": after.ended_reason,
            "consultation": after.to_wire(),
        }
        for subject in audience(before):
            await self._notifier.to_subject(subject, "consultation.ended", payload)


async def _safely(call: Awaitable[None], what: str, consultation_id: str) -> None:
    """A failing listener is logged; it never stops the others nor the domain change."""
    try:
        await call
    except Exception:
        logger.exception("listener failed on %s consultation=%s", what, consultation_id)
