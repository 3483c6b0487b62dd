"""Consent, recording flag, clinician notes, audit log and the admin overview."""

from __future__ import annotations

import logging
from typing import Any

from rooms.errors import Forbidden, InvalidState
from rooms.models import AuditEvent, Consent, Consultation, Participant
from rooms.notify import Actor
from rooms.roles import Role
from rooms.rules import ACTIVE, ENDED, require_assigned, require_clinician, require_role
from rooms.service_base import ServiceBase, safely

logger = logging.getLogger(__name__)


class RecordsMixin(ServiceBase):
    """What is recorded about a consultation, and read access to it."""

    async def save_notes(self, actor: Actor, consultation_id: str, notes: str) -> Consultation:
        """The treating clinician's notes (never logged, never pushed to other participants)."""
        require_clinician(actor)
        await self._require_audit_room(consultation_id, "notes")

        def change(c: Consultation) -> bool:
            require_assigned(actor, c)
            c.notes = notes
            return True

        _, after = await self._update(consultation_id, change)
        await self.audit(after.id, actor, "notes", {"length": len(notes)})
        return after

    async def record_consent(self, actor: Actor, consultation_id: str, purpose: str) -> Consent:
        """Record that the guardian consented (given at the outlet or to the clinician).

        Consent already given for the same purpose is kept as it is: no write, no audit entry.
        """
        now = self._clock()
        await self._require_audit_room(consultation_id, "consent")

        def change(c: Consultation) -> bool:
            self._require_caretaker(actor, c)
            if c.state is ENDED:
                raise InvalidState("this consultation has ended")
            if c.consent is not None and c.consent.purpose == purpose:
                return False
            c.consent = Consent(actor.subject, now, c.outlet_id, purpose)
            return True

        before, after = await self._update(consultation_id, change)
        assert after.consent is not None
        if after.version == before.version:
            return after.consent
        await self.audit(after.id, actor, "consent", {"purpose": purpose})
        logger.info("consent recorded consultation=%s by=%s", after.id, actor.subject)
        await self._notify_consultation(after, "consultation.updated")
        return after.consent

    async def withdraw_consent(self, actor: Actor, consultation_id: str) -> Consultation:
        """Withdraw consent; listeners (recording) stop at once."""
        await self._require_audit_room(consultation_id, "consent_withdrawn")

        def change(c: Consultation) -> bool:
            self._require_caretaker(actor, c)
            if c.consent is None:
                return False
            c.consent = None
            return True

        before, after = await self._update(consultation_id, change)
        if before.consent is None:
            return after
        await self.audit(after.id, actor, "consent_withdrawn", {})
        logger.info("consent withdrawn consultation=%s by=%s", after.id, actor.subject)
        for listener in self._listeners:
            await safely(listener.on_consent_withdrawn(after.id), "consent_withdrawn", after.id)
        await self._notify_consultation(after, "consultation.updated")
        return after

    async def consent_for(self, consultation_id: str) -> Consent | None:
        return (await self._get(consultation_id)).consent

    async def set_recording(self, consultation_id: str, recording: bool) -> Consultation:
        """Flag (for clients) whether the consultation is being recorded."""

        def change(c: Consultation) -> bool:
            if c.recording == recording:
                return False
            c.recording = recording
            return True

        before, after = await self._update(consultation_id, change)
        if before.recording != after.recording:
            await self._notify_consultation(after, "consultation.updated")
        return after

    async def require_participant(self, consultation_id: str, identity: Actor) -> Participant:
        """The identity's participant in that active consultation, once joined and admitted."""
        consultation = await self._get(consultation_id)
        self._authorize_view(identity, consultation)
        if consultation.state is not ACTIVE:
            raise InvalidState("the consultation is not active")
        participant = consultation.participants.get(identity.subject)
        if participant is None or not participant.connected:
            raise Forbidden("join the consultation first")
        if not participant.admitted:
            raise Forbidden("wait to be admitted")
        return participant

    async def get(self, actor: Actor, consultation_id: str) -> Consultation:
        """A consultation the actor may see."""
        consultation = await self._get(consultation_id)
        self._authorize_view(actor, consultation)
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
        events = await self._store.audit_page(consultation_id, cursor, size + 1)
        if not events and cursor == 0:
            await self._get(consultation_id)
        following = cursor + size if len(events) > size else None
        return events[:size], following

    async def overview(self, actor: Actor) -> dict[str, Any]:
        """Admin dashboard: queues, clinicians and live consultations."""
        require_role(actor, Role.ADMIN)
        now = self._clock()
        open_ = await self._store.open_consultations()
        presences = await self._store.all_presence()
        services = sorted({c.service for c in open_ if c.state.queued})
        timeout = self._config.presence_timeout_s
        return {
            "queues": {
                s: [e.to_wire() for e in await self._entries(s, open_, presences, now)]
                for s in services
            },
            "clinicians": [
                p.to_wire(now, timeout) for p in sorted(presences, key=lambda p: p.clinician_id)
            ],
            "active": [c.to_wire() for c in open_ if c.state is ACTIVE],
            "store": self._store.backend,
        }
