"""Reading and writing consultations and presence safely, and the audit trail.

Every change is a read → change a copy → compare-and-set write, retried when another request
(on this or another process) wrote first, so two concurrent requests can never both win.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from rooms.audit import AuditAction
from rooms.errors import AuditLimitReached, Conflict, NotFound
from rooms.models import AuditEvent, ClinicianPresence, Consultation
from rooms.notify import Actor
from rooms.roles import Role
from rooms.store import AuditTrail, Store

logger = logging.getLogger(__name__)

CAS_ATTEMPTS = 8

Change = Callable[[Consultation], bool]
PresenceChange = Callable[[ClinicianPresence | None], ClinicianPresence | None]


class ConsultationRepository:
    """Get and compare-and-set update over the store; the audit trail."""

    def __init__(
        self,
        store: Store,
        audit_trail: AuditTrail,
        clock: Callable[[], float],
        max_audit_per_action: int,
        on_limit: Callable[[str], None],
    ) -> None:
        self._store = store
        self._audit_trail = audit_trail
        self._clock = clock
        self._max_audit_per_action = max_audit_per_action
        self._on_limit = on_limit

    async def get(self, consultation_id: str) -> Consultation:
        """The stored consultation; :class:`NotFound` if there is none."""
        consultation = await self._store.get_consultation(consultation_id)
        if consultation is None:
            raise NotFound("no such consultation")
        return consultation

    async def update(
        self, consultation_id: str, change: Change, durable: bool = False
    ) -> tuple[Consultation, Consultation]:
        """Apply ``change`` to a fresh copy and compare-and-set it; retry if someone else won.

        ``change`` raises a :class:`DomainError` to refuse, or returns ``False`` for "nothing to
        do" (then ``before`` is returned twice). ``durable``: see ``Store.put_consultation``.
        """
        for _ in range(CAS_ATTEMPTS):
            before = await self.get(consultation_id)
            after = before.copy()
            if not change(after):
                return before, before
            written = await self._store.put_consultation(after, before.version, durable)
            if written is not None:
                return before, written
        raise Conflict()

    async def update_presence(
        self, clinician_id: str, change: PresenceChange
    ) -> ClinicianPresence | None:
        """Compare-and-set a clinician's presence, retrying on a concurrent write.

        ``change`` gets the freshly read presence (or ``None``) and returns the one to write, or
        ``None`` for "nothing to do" (then the presence read is returned).
        """
        for _ in range(CAS_ATTEMPTS):
            current = await self._store.get_presence(clinician_id)
            wanted = change(current)
            if wanted is None:
                return current
            written = await self._store.put_presence(wanted, current.version if current else 0)
            if written is not None:
                return written
        raise Conflict("presence changed concurrently too often; try again")

    async def audit(
        self,
        consultation_id: str,
        actor: Actor,
        action: AuditAction,
        details: dict[str, Any],
        at: float | None = None,
    ) -> None:
        """Append one event (now, unless ``at``) to the consultation's audit log."""
        await self.audit_as(consultation_id, actor.subject, actor.role, action, details, at)

    async def audit_as(
        self,
        consultation_id: str,
        subject: str,
        role: Role,
        action: AuditAction,
        details: dict[str, Any],
        at: float | None = None,
    ) -> None:
        """Append one event for a participant who is not the one acting (a drop, a redemption).

        An entry repeating the last one is skipped; past the per-action cap nothing is kept.
        """
        when = self._clock() if at is None else at
        event = AuditEvent(consultation_id, when, subject, role.value, action.value, details)
        outcome = await self._audit_trail.append_audit(event, self._max_audit_per_action)
        if outcome == "capped":
            self._on_limit(AuditLimitReached.limit)
            logger.info("audit capped consultation=%s action=%s", consultation_id, action.value)

    async def require_audit_room(self, consultation_id: str, action: AuditAction) -> None:
        """Refuse a client action whose audit entries reached the per-consultation cap."""
        count = await self._audit_trail.audit_count(consultation_id, action.value)
        if count >= self._max_audit_per_action:
            self._on_limit(AuditLimitReached.limit)
            raise AuditLimitReached(
                f"{action.value!r} was recorded {count} times on this consultation, "
                "the most allowed"
            )
