"""State and helpers every part of the consultation service shares.

Every change to a consultation is a read → change a copy → compare-and-set write (see
:meth:`ServiceBase._update`), so concurrent requests on one or several processes cannot both win.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rooms.errors import AuditLimitReached, Conflict, Forbidden, NotFound
from rooms.models import AuditEvent, ClinicianPresence, Consultation, PresenceStatus, QueueEntry
from rooms.notify import Actor, ConsultationListener, Notifier
from rooms.queue import QueuePolicy, order_queue, queue_entries
from rooms.roles import Role
from rooms.rules import (
    ACTIVE,
    OFFERED,
    audience,
    require_assigned,
    require_clinician,
    require_owner,
)
from rooms.store import Store

logger = logging.getLogger(__name__)

CAS_ATTEMPTS = 8


@dataclass(frozen=True)
class ServiceConfig:
    """Timings and queue policy; built by the composition root from settings."""

    offer_timeout_s: float = 30.0
    rejoin_grace_s: float = 60.0
    empty_room_grace_s: float = 60.0
    presence_timeout_s: float = 10.0
    default_invite_ttl_s: float = 15 * 60.0
    policy: QueuePolicy = field(default_factory=QueuePolicy)
    max_open_per_outlet: int = 4
    max_invites_per_consultation: int = 10
    max_audit_per_action: int = 100
    queue_push_entries: int = 20
    audit_page_max: int = 200

    @property
    def round_interval_s(self) -> float:
        """How often deadlines are checked: a quarter of the shortest one, within 50 ms..1 s."""
        shortest = min(
            self.offer_timeout_s,
            self.rejoin_grace_s,
            self.empty_room_grace_s,
            self.presence_timeout_s,
        )
        return min(1.0, max(0.05, shortest / 4))


@dataclass(frozen=True)
class CheckIn:
    """An outlet's consultation request."""

    service: str
    outlet_id: str
    patient_ref: str
    guardian_present: bool
    urgent: bool = False
    appointment_at: float | None = None


class ServiceBase:
    """Store, notifier, listeners and local connections; compare-and-set updates; notifications."""

    def __init__(
        self,
        store: Store,
        notifier: Notifier,
        config: ServiceConfig,
        clock: Callable[[], float] = time.time,
        on_limit: Callable[[str], None] = lambda limit: None,
    ) -> None:
        """``on_limit(name)`` is told of every refusal or cap by a resource limit (a metric)."""
        self._store = store
        self._on_limit = on_limit
        self._notifier = notifier
        self._config = config
        self._clock = clock
        self._node = uuid.uuid4().hex
        self._listeners: list[ConsultationListener] = []
        self._connections: dict[str, set[str]] = {}
        self._actors: dict[str, Actor] = {}
        self._wake = asyncio.Event()
        self._check_in_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._stopping = False
        self._heartbeat_at = 0.0
        self._published_queues: dict[str, tuple[Any, ...]] = {}
        self._published_positions: dict[str, tuple[int, str, int | None]] = {}

    def add_listener(self, listener: ConsultationListener) -> None:
        """Register media/recording hooks (participant left, ended, consent withdrawn)."""
        self._listeners.append(listener)

    def wake(self) -> None:
        """Run a round soon (after anything that may allow a new pairing)."""
        self._wake.set()

    async def audit(
        self, consultation_id: str, actor: Actor, action: str, details: dict[str, Any]
    ) -> None:
        """Append one event to the consultation's audit log."""
        await self._append_audit(
            AuditEvent(
                consultation_id, self._clock(), actor.subject, actor.role.value, action, details
            )
        )

    async def _append_audit(self, event: AuditEvent) -> None:
        """Append, skipping a repeat of the last entry; past the per-action cap nothing is kept."""
        outcome = await self._store.append_audit(event, self._config.max_audit_per_action)
        if outcome == "capped":
            self._on_limit(AuditLimitReached.limit)
            logger.info(
                "audit capped consultation=%s action=%s", event.consultation_id, event.action
            )

    async def _require_audit_room(self, consultation_id: str, action: str) -> None:
        """Refuse a client action whose audit entries reached the per-consultation cap."""
        count = await self._store.audit_count(consultation_id, action)
        if count >= self._config.max_audit_per_action:
            self._on_limit(AuditLimitReached.limit)
            raise AuditLimitReached(
                f"{action!r} was recorded {count} times on this consultation, the most allowed"
            )

    async def _update(
        self, consultation_id: str, change: Callable[[Consultation], bool]
    ) -> tuple[Consultation, Consultation]:
        """Apply ``change`` to a fresh copy and compare-and-set it; retry if someone else won.

        ``change`` raises a :class:`DomainError` to refuse, or returns ``False`` for "nothing to
        do" (then ``before`` is returned twice).
        """
        for _ in range(CAS_ATTEMPTS):
            before = await self._get(consultation_id)
            after = before.copy()
            if not change(after):
                return before, before
            written = await self._store.put_consultation(after, before.version)
            if written is not None:
                return before, written
        raise Conflict()

    async def _get(self, consultation_id: str) -> Consultation:
        consultation = await self._store.get_consultation(consultation_id)
        if consultation is None:
            raise NotFound("no such consultation")
        return consultation

    async def _after_end(
        self, actor: Actor | None, before: Consultation, after: Consultation
    ) -> None:
        if actor is not None:
            await self.audit(after.id, actor, "end", {"reason": after.ended_reason})
        else:
            await self._append_audit(
                AuditEvent(
                    after.id,
                    self._clock(),
                    "system",
                    "system",
                    "end",
                    {"reason": after.ended_reason},
                )
            )
        logger.info(
            "ended consultation=%s reason=%s by=%s",
            after.id,
            after.ended_reason,
            actor.subject if actor else "system",
        )
        if before.started_at is not None and after.ended_at is not None and before.state is ACTIVE:
            await self._store.add_duration(after.service, after.ended_at - before.started_at)
        if before.state is OFFERED and before.offered_to:
            await self._notifier.to_subject(
                before.offered_to,
                "consultation.offer_withdrawn",
                {"consultation_id": after.id, "reason": "ended"},
            )
        for listener in self._listeners:
            await safely(listener.on_consultation_ended(after.id), "consultation_ended", after.id)
        payload = {
            "consultation_id": after.id,
            "reason": after.ended_reason,
            "consultation": after.to_wire(),
        }
        for subject in audience(before):
            await self._notifier.to_subject(subject, "consultation.ended", payload)
        self.wake()

    async def _tell_left(self, consultation_id: str, participant_id: str) -> None:
        for listener in self._listeners:
            await safely(
                listener.on_participant_left(consultation_id, participant_id),
                "participant_left",
                consultation_id,
            )

    async def _notify_consultation(
        self, consultation: Consultation, event: str, skip: str | None = None
    ) -> None:
        payload = {"consultation": consultation.to_wire()}
        for subject in audience(consultation):
            if subject != skip:
                await self._notifier.to_subject(subject, event, payload)

    async def _live_clinicians(self, now: float) -> dict[str, ClinicianPresence]:
        timeout = self._config.presence_timeout_s
        return {
            p.clinician_id: p for p in await self._store.all_presence() if p.is_live(now, timeout)
        }

    async def _entries(
        self,
        service: str,
        open_: list[Consultation],
        presences: list[ClinicianPresence],
        now: float,
    ) -> list[QueueEntry]:
        timeout = self._config.presence_timeout_s
        engaged = {c.offered_to for c in open_ if c.state is OFFERED} | {
            c.clinician_id for c in open_ if c.state is ACTIVE
        }
        covering = [
            p
            for p in presences
            if p.is_live(now, timeout)
            and service in p.services
            and p.status is not PresenceStatus.AWAY
        ]
        free = [
            p
            for p in covering
            if p.status is PresenceStatus.AVAILABLE and p.clinician_id not in engaged
        ]
        ordered = order_queue((c for c in open_ if c.service == service), now, self._config.policy)
        return queue_entries(
            ordered, now, await self._store.recent_durations(service), len(free), len(covering)
        )

    async def _entry_for(self, consultation: Consultation) -> QueueEntry | None:
        """Its queue entry, or ``None`` if it left the queue meanwhile (taken, ended)."""
        open_ = await self._store.open_consultations()
        entries = await self._entries(
            consultation.service, open_, await self._store.all_presence(), self._clock()
        )
        return next((e for e in entries if e.consultation_id == consultation.id), None)

    def _authorize_view(self, actor: Actor, c: Consultation) -> None:
        if actor.role is Role.ADMIN:
            return
        if actor.role is Role.OUTLET and c.outlet_id == actor.subject:
            return
        if actor.role.is_clinician and (
            c.service in actor.services or c.clinician_id == actor.subject
        ):
            return
        if actor.role is Role.GUEST and actor.consultation_id == c.id:
            return
        raise Forbidden("you may not see this consultation")

    def _require_caretaker(self, actor: Actor, c: Consultation) -> None:
        if actor.role is Role.OUTLET:
            require_owner(actor, c)
        else:
            require_clinician(actor)
            require_assigned(actor, c)


async def safely(call: Any, what: str, consultation_id: str) -> None:
    try:
        await call
    except Exception:
        logger.exception("listener failed on %s consultation=%s", what, consultation_id)
