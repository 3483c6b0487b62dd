"""Audit entries about one consultation, written with its patient and under the per-action
cap (a client repeating an act past it is refused)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from records.audit_trail import SqlAuditTrail
from rooms.audit import AuditAction
from rooms.errors import AuditLimitReached
from rooms.models import AuditEvent, Consultation
from rooms.notify import Actor


class ConsultationAudit:
    """Writes one audit entry per act."""

    def __init__(
        self, trail: SqlAuditTrail, max_per_action: int, clock: Callable[[], float]
    ) -> None:
        self._trail = trail
        self._max_per_action = max_per_action
        self._clock = clock

    async def write(
        self,
        actor: Actor,
        consultation: Consultation,
        action: AuditAction,
        details: dict[str, Any],
    ) -> None:
        event = AuditEvent(
            consultation.id,
            self._clock(),
            actor.subject,
            actor.role.value,
            action.value,
            details,
            consultation.patient_id,
        )
        await self.append(event)

    async def append(self, event: AuditEvent) -> None:
        """Append ``event``; refused past the per-action cap (an unaudited act never happens)."""
        if await self._trail.append_audit(event, self._max_per_action) == "capped":
            raise AuditLimitReached(f"{event.action!r} was recorded too often on this consultation")
