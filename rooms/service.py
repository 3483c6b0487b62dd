"""``ConsultationService``: the consultation domain's front over its composed parts.

Built in dependency order, each part owning one concern:

- :class:`ConsultationRepository` — get, compare-and-set update (consultations and presence),
  audit trail;
- :class:`Announcer` — notifications to clients and listeners (media, recording);
- :class:`QueueView` / :class:`QueuePublisher` — reading the queues / pushing their changes;
- :class:`Pairing` — offers, their expiry and withdrawal, accept, pick, decline;
- :class:`Presence` — a clinician's chosen status and its online flag;
- :class:`Lifecycle` — check-in, transfer, end (asked for, or by deadline);
- :class:`Attendance` — join, leave, drops and the rejoin grace;
- :class:`Invites` — guest invites and admission;
- :class:`Records` — notes, consent, recording flag, reads, audit log, overview;
- :class:`Connections` — this process's connections, resume, heartbeats;
- :class:`RoundScheduler` — the background round calling the parts' periodic steps.

The service is transport-agnostic: it speaks through a :class:`Notifier`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rooms.announcer import Announcer
from rooms.attendance import Attendance
from rooms.audit import AuditAction
from rooms.config import ServiceConfig
from rooms.connections import Connections
from rooms.invites import Invites
from rooms.lifecycle import Lifecycle
from rooms.models import CheckIn
from rooms.notify import Actor, Notifier
from rooms.pairing import Pairing
from rooms.presence import Presence
from rooms.queue_publisher import QueuePublisher
from rooms.queue_view import QueueView
from rooms.records import Records
from rooms.repository import ConsultationRepository
from rooms.rounds import RoundScheduler, Wakeup
from rooms.store import AuditTrail, Store

__all__ = ["CheckIn", "ConsultationService", "ServiceConfig"]


class ConsultationService:
    """The consultation domain: each public operation is carried out by one part."""

    def __init__(
        self,
        store: Store,
        audit_trail: AuditTrail,
        notifier: Notifier,
        config: ServiceConfig,
        clock: Callable[[], float] = time.time,
        on_limit: Callable[[str], None] = lambda limit: None,
    ) -> None:
        """``on_limit(name)`` is told of every refusal or cap by a resource limit (a metric)."""
        wake = Wakeup()
        repository = ConsultationRepository(
            store, audit_trail, clock, config.max_audit_per_action, on_limit
        )
        announcer = Announcer(notifier)
        queues = QueueView(store, config, clock)
        pairing = Pairing(store, repository, queues, announcer, config, clock, wake)
        presence = Presence(repository, pairing, config, clock, wake)
        lifecycle = Lifecycle(
            store, repository, queues, pairing, announcer, config, clock, wake, on_limit
        )
        attendance = Attendance(repository, lifecycle, announcer, config, clock)
        invites = Invites(store, repository, announcer, config, clock, on_limit)
        records = Records(store, audit_trail, repository, queues, announcer, config, clock)
        connections = Connections(
            store, presence, pairing, attendance, queues, announcer, config, clock, wake
        )
        publisher = QueuePublisher(store, queues, announcer, config.queue_push_entries, clock)
        self._repository = repository
        self._connections = connections
        self._rounds = RoundScheduler(
            store,
            connections,
            pairing,
            attendance,
            lifecycle,
            publisher,
            wake,
            config.round_interval_s,
            clock,
        )

        self.add_listener = announcer.add_listener
        self.add_records_listener = announcer.add_records_listener
        self.wake = wake.__call__
        self.run_round = self._rounds.run_round
        # Queues and pairing.
        self.queue_list = queues.queue_list
        self.set_presence = presence.set_presence
        self.accept = pairing.accept
        self.pick = pairing.pick
        self.decline = pairing.decline
        # A consultation's life and its room.
        self.check_in = lifecycle.check_in
        self.cancel = lifecycle.cancel
        self.transfer = lifecycle.transfer
        self.end = lifecycle.end
        self.join = attendance.join
        self.leave = attendance.leave
        self.connected = connections.connected
        self.disconnected = connections.disconnected
        self.heartbeat = connections.heartbeat
        # Guests.
        self.invite = invites.invite
        self.redeem_invite = invites.redeem_invite
        self.admit = invites.admit
        # Records and reads.
        self.save_notes = records.save_notes
        self.record_consent = records.record_consent
        self.withdraw_consent = records.withdraw_consent
        self.consent_for = records.consent_for
        self.set_recording = records.set_recording
        self.require_participant = records.require_participant
        self.get = records.get
        self.audit_log = records.audit_log
        self.overview = records.overview

    async def audit(
        self,
        consultation_id: str,
        actor: Actor,
        action: AuditAction,
        details: dict[str, Any],
    ) -> None:
        """Append one event to the consultation's audit log, for parts outside the domain."""
        await self._repository.audit(consultation_id, actor, action, details)

    @property
    def rounds_running(self) -> bool:
        """Whether the background round is going."""
        return self._rounds.running

    async def start(self) -> None:
        """Start the background round (deadlines, pairing, queue updates)."""
        self._rounds.start()

    async def close(self) -> None:
        """Stop the round, then record still-open local connections as dropped (idempotent)."""
        await self._rounds.stop()
        await self._connections.close()
