"""Consent, recording flag, clinician notes, reading a consultation, its audit log, overview."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from rooms.announcer import Announcer
from rooms.audit import AuditAction
from rooms.config import ServiceConfig
from rooms.errors import InvalidState
from rooms.models import AuditEvent, Consent, Consultation, Participant
from rooms.notify import Actor
from rooms.queue_view import QueueView
from rooms.repository import ConsultationRepository
from rooms.roles import Role
from rooms.rules import (
    require_assigned,
    require_caretaker,
    require_clinician,
    require_present,
    require_role,
    require_view,
)
from rooms.store import AuditTrail, Store
from rooms.transitions import ACTIVE, ENDED

logger = logging.getLogger(__name__)


class Records:
    """What is recorded about a consultation, and read access to it."""

    def __init__(
        self,
        store: Store,
        audit_trail: AuditTrail,
        repository: ConsultationRepository,
        queues: QueueView,
        announcer: Announcer,
        config: ServiceConfig,
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._audit_trail = audit_trail
        self._repository = repository
        self._queues = queues
        self._announcer = announcer
        self._config = config
        self._clock = clock

    async def save_notes(self, actor: Actor, consultation_id: str, notes: str) -> Consultation:
        """The treating clinician's notes (never logged, never pushed to other participants)."""
        require_clinician(actor)
        await self._repository.require_audit_room(consultation_id, AuditAction.NOTES)

        def change(c: Consultation) -> bool:
            require_assigned(actor, c)
            c.notes = notes
            return True

        _, after = await self._repository.update(consultation_id, change)
        await self._repository.audit(after.id, actor, AuditAction.NOTES, {"length": len(notes)})
        return after

    async def record_consent(self, actor: Actor, consultation_id: str, purpose: str) -> Consent:
        """Record that the guardian consented (given at the outlet or to the clinician).

        Consent already given for the same purpose is kept as it is: no write, no audit entry.
        """
        now = self._clock()
        await self._repository.require_audit_room(consultation_id, AuditAction.CONSENT)

        def change(c: Consultation) -> bool:
            require_caretaker(actor, c)
            if c.state is ENDED:
                raise InvalidState("this consultation has ended")
            if c.consent is not None and c.consent.purpose == purpose:
                return False
            c.consent = Consent(actor.subject, now, c.outlet_id, purpose)
            return True

        before, after = await self._repository.update(consultation_id, change, durable=True)
        assert after.consent is not None
        if after.version == before.version:
            return after.consent
        await self._repository.audit(after.id, actor, AuditAction.CONSENT, {"purpose": purpose})
        logger.info("consent recorded consultation=%s by=%s", after.id, actor.subject)
        await self._announcer.consent_changed(after, actor)
        await self._announcer.updated(after)
        return after.consent

    async def withdraw_consent(self, actor: Actor, consultation_id: str) -> Consultation:
        """Withdraw consent; listeners (recording) stop at once."""
        await self._repository.require_audit_room(consultation_id, AuditAction.CONSENT_WITHDRAWN)

        def change(c: Consultation) -> bool:
            require_caretaker(actor, c)
            if c.consent is None:
                return False
            c.consent = None
            return True

        before, after = await self._repository.update(consultation_id, change, durable=True)
        if before.consent is None:
            return after
        await self._repository.audit(after.id, actor, AuditAction.CONSENT_WITHDRAWN, {})
        logger.info("consent withdrawn consultation=%s by=%s", after.id, actor.subject)
        await self._announcer.consent_withdrawn(after.id)
        await self._announcer.consent_changed(after, actor)
        await self._announcer.updated(after)
        return after

    async def consent_for(self, consultation_id: str) -> Consent | None:
        """The consent given for this consultation, if any."""
        return (await self._repository.get(consultation_id)).consent

    async def set_recording(self, consultation_id: str, recording: bool) -> Consultation:
        """Flag (for clients) whether the consultation is being recorded."""

        def change(c: Consultation) -> bool:
            if c.recording == recording:
                return False
            c.recording = recording
            return True

        before, after = await self._repository.update(consultation_id, change)
        if before.recording != after.recording:
            await self._announcer.updated(after)
        return after

    async def require_participant(self, consultation_id: str, identity: Actor) -> Participant:
        """The identity's participant in that active consultation, once joined and admitted."""
        consultation = await self.get(identity, consultation_id)
        if consultation.state is not ACTIVE:
            raise InvalidState("the consultation is not active")
        return require_present(consultation.participants.get(identity.subject))

    async def get(self, actor: Actor, consultation_id: str) -> Consultation:
        """A consultation the actor may see."""
        consultation = await self._repository.get(consultation_id)
        require_view(actor, consultation)
        return consultation

    async def audit_log(
        self, actor: Actor, consultation_id: str, cursor: int = 0, limit: int | None = None
    ) -> tuple[list[AuditEvent], int | None]:
        """One page of a consultation's audit log (oldest first) and the next page's cursor.

        ``limit`` is capped at ``audit_page_max``; the cursor is ``None`` after the last page.
        A consultation the in-memory store purged is still listed while its audit is kept.
        """
        require_role(actor, Role.ADMIN)
        size = min(limit or self._config.audit_page_max, self._config.audit_page_max)
        # One entry more than asked tells whether another page follows.
        events = await self._audit_trail.audit_page(consultation_id, cursor, size + 1)
        if not events and cursor == 0:
            await self._repository.get(consultation_id)
        following = cursor + size if len(events) > size else None
        return events[:size], following

    async def overview(self, actor: Actor) -> dict[str, Any]:
        """Admin dashboard: queues, clinicians and live consultations."""
        require_role(actor, Role.ADMIN)
        now = self._clock()
        queues = await self._queues.all_entries()
        open_ = await self._store.open_consultations()
        presences = await self._store.all_presence()
        timeout = self._config.presence_timeout_s
        return {
            "queues": {s: [e.to_wire() for e in entries] for s, entries in queues.items()},
            "clinicians": [
                p.to_wire(now, timeout) for p in sorted(presences, key=lambda p: p.clinician_id)
            ],
            "active": [c.to_wire() for c in open_ if c.state is ACTIVE],
            "store": self._store.backend,
        }
