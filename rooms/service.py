"""``ConsultationService``: check-in, presence, pairing, room lifecycle, invites, transfer, audit.

Every change to a consultation is a read → change a copy → compare-and-set write (see
:meth:`_update`), so concurrent requests on one or several processes cannot both win. Timers
(offer timeout, rejoin grace, empty room) are deadlines stored on the consultation and enforced
by one background round per process; the store's atomic writes make a deadline that two
processes see at once fire only once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from rooms.errors import Conflict, Expired, Forbidden, InvalidState, NotFound, Unavailable
from rooms.models import (
    AuditEvent,
    ClinicianPresence,
    Consent,
    Consultation,
    ConsultationState,
    Invite,
    Participant,
    PresenceStatus,
    QueueEntry,
)
from rooms.notify import Actor, ConsultationListener, Notifier
from rooms.queue import QueuePolicy, order_queue, queue_entries
from rooms.roles import Role
from rooms.store import Store

logger = logging.getLogger(__name__)

_CAS_ATTEMPTS = 8
_ROUND_LOCK = "rounds"

WAITING, OFFERED = ConsultationState.WAITING, ConsultationState.OFFERED
ACTIVE, ENDED = ConsultationState.ACTIVE, ConsultationState.ENDED


@dataclass(frozen=True)
class ServiceConfig:
    """Timings and queue policy; built by the composition root from settings."""

    offer_timeout_s: float = 30.0
    rejoin_grace_s: float = 60.0
    empty_room_grace_s: float = 60.0
    presence_timeout_s: float = 10.0
    default_invite_ttl_s: float = 15 * 60.0
    policy: QueuePolicy = field(default_factory=QueuePolicy)

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


class ConsultationService:
    """The consultation domain, transport-agnostic: it speaks through a :class:`Notifier`."""

    def __init__(
        self,
        store: Store,
        notifier: Notifier,
        config: ServiceConfig,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._notifier = notifier
        self._config = config
        self._clock = clock
        self._node = uuid.uuid4().hex
        self._listeners: list[ConsultationListener] = []
        self._connections: dict[str, set[str]] = {}
        self._actors: dict[str, Actor] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._stopping = False
        self._heartbeat_at = 0.0
        self._published_queues: dict[str, tuple[tuple[str, int, str], ...]] = {}
        self._published_positions: dict[str, tuple[int, str, int | None]] = {}

    # ----- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the background round (deadlines, pairing, queue updates)."""
        if self._task is None:
            self._task = asyncio.create_task(
                self._run_rounds(), name=f"consultation-rounds-{self._node[:8]}"
            )

    async def close(self) -> None:
        """Stop the round and record still-open local connections as dropped (idempotent)."""
        if self._closed:
            return
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for subject, sids in list(self._connections.items()):
            actor = self._actors.get(subject)
            for sid in list(sids):
                if actor is not None:
                    await self.disconnected(actor, sid)
        self._closed = True

    def add_listener(self, listener: ConsultationListener) -> None:
        """Register media/recording hooks (participant left, ended, consent withdrawn)."""
        self._listeners.append(listener)

    def wake(self) -> None:
        """Run a round soon (after anything that may allow a new pairing)."""
        self._wake.set()

    # ----- outlet ----------------------------------------------------------------------------

    async def check_in(self, actor: Actor, request: CheckIn) -> tuple[Consultation, QueueEntry]:
        """Queue a consultation request for the outlet; returns it with its queue entry."""
        _require_role(actor, Role.OUTLET)
        if request.outlet_id != actor.subject:
            raise Forbidden("an outlet may only check in for itself")
        now = self._clock()
        consultation = Consultation(
            id="c-" + uuid.uuid4().hex,
            service=request.service,
            outlet_id=request.outlet_id,
            patient_ref=request.patient_ref,
            guardian_present=request.guardian_present,
            urgent=request.urgent,
            appointment_at=request.appointment_at,
            created_at=now,
            queued_at=now,
            participants={
                actor.subject: Participant(
                    actor.subject, Role.OUTLET, actor.name, connected=True, joined_at=now
                )
            },
        )
        written = await self._store.put_consultation(consultation, 0)
        if written is None:
            raise Conflict("consultation id collision; try again")
        await self.audit(
            written.id,
            actor,
            "check_in",
            {
                "service": written.service,
                "urgent": written.urgent,
                "appointment_at": written.appointment_at,
            },
        )
        logger.info(
            "checked in consultation=%s outlet=%s service=%s urgent=%s",
            written.id,
            written.outlet_id,
            written.service,
            written.urgent,
        )
        entry = await self._entry_for(written)
        self.wake()
        return written, entry

    async def cancel(self, actor: Actor, consultation_id: str) -> Consultation:
        """The outlet withdraws a request that is still queued."""

        def change(c: Consultation) -> bool:
            _require_owner(actor, c)
            if not c.state.queued:
                raise InvalidState("only a waiting consultation can be cancelled; end it instead")
            _finish(c, self._clock(), "cancelled")
            return True

        before, after = await self._update(consultation_id, change)
        await self._after_end(actor, before, after)
        return after

    # ----- clinicians ------------------------------------------------------------------------

    async def set_presence(
        self, actor: Actor, status: PresenceStatus, services: Iterable[str] | None = None
    ) -> ClinicianPresence:
        """Set a clinician's status and the services it takes now (a subset of its token's)."""
        _require_clinician(actor)
        chosen = tuple(sorted(set(services) if services is not None else actor.services))
        if not set(chosen) <= actor.services:
            raise Forbidden("you may only cover services your token grants")
        now = self._clock()
        previous = await self._store.get_presence(actor.subject)
        keeps_availability = (
            previous is not None
            and previous.status is status
            and previous.is_live(now, self._config.presence_timeout_s)
        )
        presence = ClinicianPresence(
            clinician_id=actor.subject,
            role=actor.role,
            name=actor.name,
            status=status,
            services=chosen,
            online=True,
            seen_at=now,
            available_since=previous.available_since if previous and keeps_availability else now,
        )
        await self._store.put_presence(presence)
        logger.info(
            "presence clinician=%s status=%s services=%s",
            actor.subject,
            status.value,
            ",".join(chosen),
        )
        self.wake()
        return presence

    async def queue_list(self, actor: Actor, service: str | None = None) -> list[QueueEntry]:
        """Waiting consultations a clinician (for covered services) or admin may see."""
        if actor.role is Role.ADMIN:
            wanted = None if service is None else {service}
        else:
            _require_clinician(actor)
            if service is not None and service not in actor.services:
                raise Forbidden("you do not cover that service")
            wanted = {service} if service is not None else set(actor.services)
        open_ = await self._store.open_consultations()
        services = {c.service for c in open_ if c.state.queued}
        entries: list[QueueEntry] = []
        presences = await self._store.all_presence()
        for name in sorted(services if wanted is None else services & wanted):
            entries.extend(await self._entries(name, open_, presences, self._clock()))
        return entries

    async def accept(self, actor: Actor, consultation_id: str) -> Consultation:
        """Take the consultation offered to this clinician: it becomes active."""
        _require_clinician(actor)

        def change(c: Consultation) -> bool:
            if c.state is not OFFERED or c.offered_to != actor.subject:
                raise Conflict("this consultation is not (or no longer) offered to you")
            self._activate(c, actor)
            return True

        _, after = await self._update(consultation_id, change)
        await self._after_activate(actor, after, "accept")
        return after

    async def pick(self, actor: Actor, consultation_id: str) -> Consultation:
        """Take a specific waiting consultation from the queue list."""
        _require_clinician(actor)

        def change(c: Consultation) -> bool:
            if c.service not in actor.services:
                raise Forbidden("you do not cover this consultation's service")
            if c.state is OFFERED and c.offered_to == actor.subject:
                self._activate(c, actor)
                return True
            if c.state is not WAITING:
                raise Conflict("this consultation has already been taken or offered")
            self._activate(c, actor)
            return True

        before, after = await self._update(consultation_id, change)
        await self._after_activate(actor, after, "pick")
        return after

    async def decline(self, actor: Actor, consultation_id: str) -> Consultation:
        """Refuse an offer: back to the queue with its place kept, offered to someone else."""
        _require_clinician(actor)

        def change(c: Consultation) -> bool:
            if c.state is not OFFERED or c.offered_to != actor.subject:
                raise Conflict("this consultation is not (or no longer) offered to you")
            _requeue(c)
            c.declined_by.append(actor.subject)
            return True

        _, after = await self._update(consultation_id, change)
        await self.audit(after.id, actor, "decline", {})
        logger.info("declined consultation=%s clinician=%s", after.id, actor.subject)
        await self._notify_consultation(after, "consultation.updated")
        self.wake()
        return after

    async def transfer(
        self, actor: Actor, consultation_id: str, service: str | None, clinician_id: str | None
    ) -> Consultation:
        """Hand an active consultation to another service or colleague (front of that queue)."""
        _require_clinician(actor)
        now = self._clock()
        colleague = await self._store.get_presence(clinician_id) if clinician_id else None
        if clinician_id is not None:
            if clinician_id == actor.subject:
                raise InvalidState("transfer to a colleague, not to yourself")
            if colleague is None or not colleague.is_live(now, self._config.presence_timeout_s):
                raise Unavailable("that colleague is not online")

        def change(c: Consultation) -> bool:
            _require_assigned(actor, c)
            if c.state is not ACTIVE:
                raise InvalidState("only an active consultation can be transferred")
            target = service or c.service
            if colleague is not None and target not in colleague.services:
                raise InvalidState("that colleague does not cover the service")
            c.service = target
            c.participants.pop(actor.subject, None)
            _requeue(c)
            c.front = True
            c.clinician_id = None
            c.started_at = None
            c.declined_by = []
            if colleague is not None:
                c.state = OFFERED
                c.offered_to = colleague.clinician_id
                c.offer_expires_at = now + self._config.offer_timeout_s
            return True

        _, after = await self._update(consultation_id, change)
        await self.audit(
            after.id, actor, "transfer", {"service": after.service, "clinician_id": clinician_id}
        )
        logger.info(
            "transferred consultation=%s from=%s service=%s to=%s",
            after.id,
            actor.subject,
            after.service,
            clinician_id or "-",
        )
        await self._tell_left(after.id, actor.subject)
        if after.state is OFFERED and after.offered_to:
            await self._announce_offer(after)
        await self._notify_consultation(after, "consultation.updated")
        self.wake()
        return after

    # ----- the room --------------------------------------------------------------------------

    async def join(self, actor: Actor, consultation_id: str) -> Consultation:
        """Enter (or re-enter) the room; a guest waits at the door until admitted."""
        now = self._clock()
        rejoined = False

        def change(c: Consultation) -> bool:
            nonlocal rejoined
            self._authorize_view(actor, c)
            if c.state is ENDED:
                raise InvalidState("this consultation has ended")
            participant = c.participants.get(actor.subject)
            if actor.role.is_clinician:
                _require_assigned(actor, c)
                if c.state is not ACTIVE:
                    raise InvalidState("accept the consultation before joining it")
            elif actor.role is Role.GUEST:
                if participant is None:
                    raise Forbidden("redeem your invite before joining")
            elif actor.role is not Role.OUTLET:
                raise Forbidden("this role does not take part in consultations")
            if participant is None:
                participant = Participant(actor.subject, actor.role, actor.name)
                c.participants[actor.subject] = participant
            rejoined = participant.disconnected_at is not None
            participant.connected = True
            participant.disconnected_at = None
            participant.joined_at = participant.joined_at or now
            if participant.admitted:
                c.empty_since = None
            return True

        _, after = await self._update(consultation_id, change)
        me = after.participants[actor.subject]
        await self.audit(
            after.id, actor, "rejoin" if rejoined else "join", {"admitted": me.admitted}
        )
        logger.info(
            "joined consultation=%s participant=%s admitted=%s rejoin=%s",
            after.id,
            actor.subject,
            me.admitted,
            rejoined,
        )
        if not me.admitted and after.clinician_id:
            await self._notifier.to_subject(
                after.clinician_id,
                "consultation.guest_waiting",
                {"consultation_id": after.id, "guest": me.to_wire()},
            )
        await self._notify_consultation(after, "consultation.updated", skip=actor.subject)
        return after

    async def leave(self, actor: Actor, consultation_id: str) -> Consultation:
        """Leave the room for good (the consultation goes on; empty rooms end after a grace)."""
        now = self._clock()

        def change(c: Consultation) -> bool:
            if actor.subject not in c.participants:
                raise NotFound("you are not in this consultation")
            if c.state is not ACTIVE:
                raise InvalidState("only an active consultation can be left; cancel a waiting one")
            del c.participants[actor.subject]
            _mark_if_empty(c, now)
            return True

        _, after = await self._update(consultation_id, change)
        await self.audit(after.id, actor, "leave", {})
        logger.info("left consultation=%s participant=%s", after.id, actor.subject)
        await self._tell_left(after.id, actor.subject)
        await self._notify_consultation(after, "consultation.updated")
        return after

    async def end(self, actor: Actor, consultation_id: str, reason: str) -> Consultation:
        """End the consultation (outlet, treating clinician or admin)."""

        def change(c: Consultation) -> bool:
            if actor.role is not Role.ADMIN:
                if actor.role is Role.OUTLET:
                    _require_owner(actor, c)
                else:
                    _require_assigned(actor, c)
            if c.state is ENDED:
                raise InvalidState("this consultation has already ended")
            _finish(c, self._clock(), reason)
            return True

        before, after = await self._update(consultation_id, change)
        await self._after_end(actor, before, after)
        return after

    async def invite(
        self, actor: Actor, consultation_id: str, guest_role: str, ttl_s: float | None = None
    ) -> Invite:
        """Create a single-use, time-limited invite for a remote parent or interpreter."""
        consultation = await self._get(consultation_id)
        if actor.role is Role.OUTLET:
            _require_owner(actor, consultation)
        else:
            _require_clinician(actor)
            _require_assigned(actor, consultation)
        if consultation.state is ENDED:
            raise InvalidState("this consultation has ended")
        now = self._clock()
        invite = Invite(
            code=secrets.token_urlsafe(18),
            consultation_id=consultation.id,
            created_by=actor.subject,
            guest_role=guest_role,
            created_at=now,
            expires_at=now + (ttl_s or self._config.default_invite_ttl_s),
        )
        await self._store.put_invite(invite)
        await self.audit(
            consultation.id,
            actor,
            "invite",
            {"guest_role": guest_role, "expires_at": invite.expires_at},
        )
        logger.info(
            "invite created consultation=%s by=%s guest_role=%s",
            consultation.id,
            actor.subject,
            guest_role,
        )
        return invite

    async def redeem_invite(self, code: str, name: str) -> tuple[Invite, Participant]:
        """Use an invite once: the guest becomes a (not yet admitted) participant."""
        invite = await self._store.get_invite(code)
        if invite is None:
            raise NotFound("no such invite")
        if invite.expires_at <= self._clock():
            raise Expired("this invite has expired")
        consultation = await self._get(invite.consultation_id)
        if consultation.state is ENDED:
            raise InvalidState("this consultation has ended")
        guest_id = "guest-" + secrets.token_hex(8)
        redeemed = await self._store.redeem_invite(code, guest_id)
        if redeemed is None:
            raise Conflict("this invite has already been used")
        guest = Participant(guest_id, Role.GUEST, name, admitted=False)

        def change(c: Consultation) -> bool:
            if c.state is ENDED:
                raise InvalidState("this consultation has ended")
            c.participants[guest_id] = guest
            return True

        await self._update(invite.consultation_id, change)
        await self._store.append_audit(
            AuditEvent(
                invite.consultation_id,
                self._clock(),
                guest_id,
                Role.GUEST.value,
                "invite_redeemed",
                {"guest_role": invite.guest_role, "invited_by": invite.created_by},
            )
        )
        logger.info("invite redeemed consultation=%s guest=%s", invite.consultation_id, guest_id)
        return redeemed, guest

    async def admit(
        self, actor: Actor, consultation_id: str, guest_id: str, admit: bool
    ) -> Consultation:
        """The treating clinician lets a waiting guest in, or turns it away."""
        _require_clinician(actor)

        def change(c: Consultation) -> bool:
            _require_assigned(actor, c)
            guest = c.participants.get(guest_id)
            if guest is None or guest.role is not Role.GUEST:
                raise NotFound("no such guest in this consultation")
            if guest.admitted:
                raise InvalidState("this guest is already in")
            if admit:
                guest.admitted = True
            else:
                del c.participants[guest_id]
            return True

        _, after = await self._update(consultation_id, change)
        await self.audit(after.id, actor, "admit" if admit else "refuse", {"guest_id": guest_id})
        logger.info(
            "%s consultation=%s guest=%s by=%s",
            "admitted" if admit else "refused",
            after.id,
            guest_id,
            actor.subject,
        )
        if admit:
            await self._notifier.to_subject(
                guest_id, "consultation.admitted", {"consultation": after.to_wire()}
            )
        else:
            await self._notifier.to_subject(
                guest_id, "consultation.refused", {"consultation_id": after.id}
            )
            await self._tell_left(after.id, guest_id)
        await self._notify_consultation(after, "consultation.updated")
        return after

    async def save_notes(self, actor: Actor, consultation_id: str, notes: str) -> Consultation:
        """The treating clinician's notes (never logged, never pushed to other participants)."""
        _require_clinician(actor)

        def change(c: Consultation) -> bool:
            _require_assigned(actor, c)
            c.notes = notes
            return True

        _, after = await self._update(consultation_id, change)
        await self.audit(after.id, actor, "notes", {"length": len(notes)})
        return after

    # ----- consent and recording hooks -------------------------------------------------------

    async def record_consent(self, actor: Actor, consultation_id: str, purpose: str) -> Consent:
        """Record that the guardian consented (given at the outlet or to the clinician)."""
        now = self._clock()

        def change(c: Consultation) -> bool:
            self._require_caretaker(actor, c)
            if c.state is ENDED:
                raise InvalidState("this consultation has ended")
            c.consent = Consent(actor.subject, now, c.outlet_id, purpose)
            return True

        _, after = await self._update(consultation_id, change)
        assert after.consent is not None
        await self.audit(after.id, actor, "consent", {"purpose": purpose})
        logger.info("consent recorded consultation=%s by=%s", after.id, actor.subject)
        await self._notify_consultation(after, "consultation.updated")
        return after.consent

    async def withdraw_consent(self, actor: Actor, consultation_id: str) -> Consultation:
        """Withdraw consent; listeners (recording) stop at once."""

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
            await _safely(listener.on_consent_withdrawn(after.id), "consent_withdrawn", after.id)
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

    async def audit(
        self, consultation_id: str, actor: Actor, action: str, details: dict[str, Any]
    ) -> None:
        """Append one event to the consultation's audit log."""
        await self._store.append_audit(
            AuditEvent(
                consultation_id, self._clock(), actor.subject, actor.role.value, action, details
            )
        )

    # ----- reading ---------------------------------------------------------------------------

    async def get(self, actor: Actor, consultation_id: str) -> Consultation:
        """A consultation the actor may see."""
        consultation = await self._get(consultation_id)
        self._authorize_view(actor, consultation)
        return consultation

    async def audit_log(self, actor: Actor, consultation_id: str) -> list[AuditEvent]:
        _require_role(actor, Role.ADMIN)
        await self._get(consultation_id)
        return await self._store.audit_for(consultation_id)

    async def overview(self, actor: Actor) -> dict[str, Any]:
        """Admin dashboard: queues, clinicians and live consultations."""
        _require_role(actor, Role.ADMIN)
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

    # ----- connections -----------------------------------------------------------------------

    async def connected(self, actor: Actor, sid: str) -> list[Consultation]:
        """A connection came up; returns the consultations this subject can resume."""
        if self._closed:
            return []
        self._connections.setdefault(actor.subject, set()).add(sid)
        self._actors[actor.subject] = actor
        now = self._clock()
        if actor.role.is_clinician:
            previous = await self._store.get_presence(actor.subject)
            presence = previous or ClinicianPresence(
                actor.subject,
                actor.role,
                actor.name,
                PresenceStatus.AWAY,
                tuple(sorted(actor.services)),
                True,
                now,
                now,
            )
            await self._store.put_presence(replace(presence, online=True, seen_at=now))
        await self._store.mark_seen([actor.subject], now)
        resumable: list[Consultation] = []
        for consultation in await self._store.open_consultations():
            if not _concerns(actor, consultation):
                continue
            if actor.role is Role.OUTLET and consultation.state.queued:
                consultation = await self._reconnect_waiting(actor, consultation)
                entry = await self._entry_for(consultation)
                await self._notifier.to_subject(actor.subject, "queue.position", entry.to_wire())
            resumable.append(consultation)
        self.wake()
        return resumable

    async def disconnected(self, actor: Actor, sid: str) -> None:
        """A connection went away: presence goes offline, the rejoin grace period starts."""
        if self._closed:
            return
        sids = self._connections.get(actor.subject, set())
        sids.discard(sid)
        if sids:
            return
        self._connections.pop(actor.subject, None)
        self._actors.pop(actor.subject, None)
        now = self._clock()
        if actor.role.is_clinician:
            presence = await self._store.get_presence(actor.subject)
            if presence is not None:
                await self._store.put_presence(replace(presence, online=False, seen_at=now))
        for consultation in await self._store.open_consultations():
            if consultation.state is OFFERED and consultation.offered_to == actor.subject:
                await self._withdraw_offer(consultation, "disconnected")
            participant = consultation.participants.get(actor.subject)
            if participant is not None and participant.connected:
                await self._mark_disconnected(consultation.id, actor.subject, now, "disconnected")
        self.wake()

    # ----- the background round --------------------------------------------------------------

    async def _run_rounds(self) -> None:
        # Checked as well as cancellation: a library call may swallow a CancelledError.
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._config.round_interval_s)
            self._wake.clear()
            try:
                await self.run_round()
            except Exception:
                logger.exception("consultation round failed node=%s", self._node[:8])

    async def run_round(self) -> None:
        """Enforce deadlines, pair waiting consultations with free clinicians, publish queues.

        Only one process runs a round at a time (a store lock); the others skip it.
        """
        await self._heartbeat()
        if not await self._store.try_lock(_ROUND_LOCK, self._node, 10.0):
            return
        try:
            await self._enforce_deadlines()
            await self._pair()
            await self._publish_queues()
        finally:
            await self._store.release_lock(_ROUND_LOCK, self._node)

    async def _heartbeat(self) -> None:
        """Tell the store this process's connections are alive, so others can spot a crash."""
        now = self._clock()
        if now - self._heartbeat_at < self._config.presence_timeout_s / 3:
            return
        self._heartbeat_at = now
        await self._store.mark_seen(list(self._actors), now)
        for subject, actor in list(self._actors.items()):
            if not actor.role.is_clinician:
                continue
            presence = await self._store.get_presence(subject)
            if presence is not None:
                await self._store.put_presence(replace(presence, online=True, seen_at=now))

    async def _enforce_deadlines(self) -> None:
        now = self._clock()
        config = self._config
        live = await self._live_clinicians(now)
        open_ = await self._store.open_consultations()
        await self._drop_silent_participants(open_, now)
        for c in open_:
            if c.state is OFFERED and c.offer_expires_at is not None and c.offer_expires_at <= now:
                await self._offer_timed_out(c)
            elif c.state is OFFERED and c.offered_to not in live:
                await self._withdraw_offer(c, "clinician_offline")
            for participant in list(c.participants.values()):
                lost_at = participant.disconnected_at
                if lost_at is not None and lost_at + config.rejoin_grace_s <= now:
                    await self._grace_expired(c.id, participant.participant_id)
            if (
                c.state is ACTIVE
                and c.empty_since is not None
                and c.empty_since + config.empty_room_grace_s <= now
            ):
                await self._end_if_still_empty(c.id)

    async def _pair(self) -> None:
        now = self._clock()
        open_ = await self._store.open_consultations()
        engaged = {c.offered_to for c in open_ if c.state is OFFERED} | {
            c.clinician_id for c in open_ if c.state is ACTIVE
        }
        free = sorted(
            (
                p
                for p in (await self._live_clinicians(now)).values()
                if p.status is PresenceStatus.AVAILABLE and p.clinician_id not in engaged
            ),
            key=lambda p: p.available_since,
        )
        for c in order_queue(open_, now, self._config.policy):
            if not free:
                return
            outlet = c.participants.get(c.outlet_id)
            if c.state is not WAITING or outlet is None or not outlet.connected:
                continue
            chosen = next(
                (
                    p
                    for p in free
                    if c.service in p.services and p.clinician_id not in c.declined_by
                ),
                None,
            )
            if chosen is not None and await self._offer(c, chosen.clinician_id):
                free.remove(chosen)

    async def _publish_queues(self) -> None:
        now = self._clock()
        open_ = await self._store.open_consultations()
        presences = await self._store.all_presence()
        services = {c.service for c in open_ if c.state.queued} | set(self._published_queues)
        seen: set[str] = set()
        for service in sorted(services):
            entries = await self._entries(service, open_, presences, now)
            signature = tuple((e.consultation_id, e.position, e.state.value) for e in entries)
            if self._published_queues.get(service) != signature:
                payload = {"service": service, "entries": [e.to_wire() for e in entries]}
                await self._notifier.to_service(service, "queue.changed", payload)
                await self._notifier.to_admins("queue.changed", payload)
            if signature:
                self._published_queues[service] = signature
            else:
                self._published_queues.pop(service, None)
            for entry in entries:
                seen.add(entry.consultation_id)
                minutes = (
                    None if entry.estimated_wait_s is None else int(entry.estimated_wait_s // 60)
                )
                key = (entry.position, entry.state.value, minutes)
                if self._published_positions.get(entry.consultation_id) != key:
                    self._published_positions[entry.consultation_id] = key
                    await self._notifier.to_subject(
                        entry.outlet_id, "queue.position", entry.to_wire()
                    )
        for gone in set(self._published_positions) - seen:
            del self._published_positions[gone]

    # ----- steps used by the round and the hooks ---------------------------------------------

    async def _offer(self, consultation: Consultation, clinician_id: str) -> bool:
        expires_at = self._clock() + self._config.offer_timeout_s

        def change(c: Consultation) -> bool:
            if c.state is not WAITING:
                return False
            c.state = OFFERED
            c.offered_to = clinician_id
            c.offer_expires_at = expires_at
            return True

        try:
            before, after = await self._update(consultation.id, change)
        except Conflict:
            return False
        if after.version == before.version:
            return False
        await self._store.append_audit(
            AuditEvent(
                after.id, self._clock(), "system", "system", "offer", {"clinician_id": clinician_id}
            )
        )
        logger.info("offered consultation=%s clinician=%s", after.id, clinician_id)
        await self._announce_offer(after)
        await self._notify_consultation(after, "consultation.updated")
        return True

    async def _announce_offer(self, consultation: Consultation) -> None:
        assert consultation.offered_to and consultation.offer_expires_at
        await self._notifier.to_subject(
            consultation.offered_to,
            "consultation.offered",
            {
                "consultation": consultation.to_wire(),
                "expires_in_s": round(consultation.offer_expires_at - self._clock(), 1),
            },
        )

    async def _offer_timed_out(self, consultation: Consultation) -> None:
        clinician_id = consultation.offered_to
        if not await self._withdraw_offer(consultation, "timeout") or clinician_id is None:
            return
        presence = await self._store.get_presence(clinician_id)
        if presence is not None and presence.status is PresenceStatus.AVAILABLE:
            # Someone who lets an offer lapse is probably not at the desk: stop offering to them.
            await self._store.put_presence(replace(presence, status=PresenceStatus.AWAY))
            logger.info("presence clinician=%s status=away reason=offer_timeout", clinician_id)

    async def _withdraw_offer(self, consultation: Consultation, reason: str) -> bool:
        clinician_id = consultation.offered_to

        def change(c: Consultation) -> bool:
            if c.state is not OFFERED or c.offered_to != clinician_id:
                return False
            _requeue(c)
            return True

        before, after = await self._update(consultation.id, change)
        if after.version == before.version or clinician_id is None:
            return False
        await self._store.append_audit(
            AuditEvent(
                after.id,
                self._clock(),
                "system",
                "system",
                "offer_withdrawn",
                {"clinician_id": clinician_id, "reason": reason},
            )
        )
        logger.info(
            "offer withdrawn consultation=%s clinician=%s reason=%s", after.id, clinician_id, reason
        )
        await self._notifier.to_subject(
            clinician_id,
            "consultation.offer_withdrawn",
            {"consultation_id": after.id, "reason": reason},
        )
        await self._notify_consultation(after, "consultation.updated")
        self.wake()
        return True

    async def _reconnect_waiting(self, actor: Actor, consultation: Consultation) -> Consultation:
        def change(c: Consultation) -> bool:
            participant = c.participants.get(actor.subject)
            if participant is None or participant.connected:
                return False
            participant.connected = True
            participant.disconnected_at = None
            return True

        before, after = await self._update(consultation.id, change)
        if after.version != before.version:
            await self.audit(after.id, actor, "rejoin", {"state": after.state.value})
            logger.info("outlet back consultation=%s participant=%s", after.id, actor.subject)
        return after

    async def _drop_silent_participants(self, open_: list[Consultation], now: float) -> None:
        """Participants marked connected whose process stopped its heartbeat (it crashed)."""
        connected = {p.participant_id for c in open_ for p in c.participants.values()
                     if p.connected}
        seen = await self._store.seen_at(connected)
        cutoff = now - self._config.presence_timeout_s
        for c in open_:
            for p in c.participants.values():
                last_seen = seen.get(p.participant_id, now)
                if p.connected and last_seen < cutoff:
                    await self._mark_disconnected(c.id, p.participant_id, last_seen, "silent")

    async def _mark_disconnected(
        self, consultation_id: str, participant_id: str, now: float, reason: str
    ) -> None:
        def change(c: Consultation) -> bool:
            participant = c.participants.get(participant_id)
            if participant is None or not participant.connected:
                return False
            participant.connected = False
            participant.disconnected_at = now
            if c.state is ACTIVE:
                _mark_if_empty(c, now)
            return True

        before, after = await self._update(consultation_id, change)
        if after.version == before.version:
            return
        role = after.participants[participant_id].role.value
        await self._store.append_audit(
            AuditEvent(after.id, now, participant_id, role, "disconnected", {"reason": reason})
        )
        logger.info(
            "dropped consultation=%s participant=%s reason=%s grace_s=%s",
            after.id,
            participant_id,
            reason,
            self._config.rejoin_grace_s,
        )
        await self._notify_consultation(after, "consultation.updated")

    async def _grace_expired(self, consultation_id: str, participant_id: str) -> None:
        now = self._clock()
        grace = self._config.rejoin_grace_s

        def change(c: Consultation) -> bool:
            participant = c.participants.get(participant_id)
            if (
                participant is None
                or participant.disconnected_at is None
                or participant.disconnected_at + grace > now
            ):
                return False
            if participant_id == c.outlet_id and c.state.queued:
                _finish(c, now, "outlet_disconnected")
                return True
            del c.participants[participant_id]
            if c.state is ACTIVE:
                _mark_if_empty(c, now)
            return True

        before, after = await self._update(consultation_id, change)
        if after.version == before.version:
            return
        role = before.participants[participant_id].role.value
        await self._store.append_audit(
            AuditEvent(
                after.id, now, participant_id, role, "leave", {"reason": "rejoin_grace_expired"}
            )
        )
        logger.info("grace expired consultation=%s participant=%s", after.id, participant_id)
        if after.state is ENDED:
            await self._after_end(None, before, after)
            return
        await self._tell_left(after.id, participant_id)
        await self._notify_consultation(after, "consultation.updated")

    async def _end_if_still_empty(self, consultation_id: str) -> None:
        now = self._clock()
        grace = self._config.empty_room_grace_s

        def change(c: Consultation) -> bool:
            if c.state is not ACTIVE or c.empty_since is None or c.empty_since + grace > now:
                return False
            _finish(c, now, "empty")
            return True

        before, after = await self._update(consultation_id, change)
        if after.version != before.version:
            await self._after_end(None, before, after)

    # ----- shared helpers --------------------------------------------------------------------

    async def _update(
        self, consultation_id: str, change: Callable[[Consultation], bool]
    ) -> tuple[Consultation, Consultation]:
        """Apply ``change`` to a fresh copy and compare-and-set it; retry if someone else won.

        ``change`` raises a :class:`DomainError` to refuse, or returns ``False`` for "nothing to
        do" (then ``before`` is returned twice).
        """
        for _ in range(_CAS_ATTEMPTS):
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

    def _activate(self, c: Consultation, actor: Actor) -> None:
        now = self._clock()
        c.state = ACTIVE
        c.clinician_id = actor.subject
        c.offered_to = None
        c.offer_expires_at = None
        c.front = False
        c.started_at = now
        c.participants[actor.subject] = Participant(
            actor.subject, actor.role, actor.name, connected=True, joined_at=now
        )
        c.empty_since = None

    async def _after_activate(self, actor: Actor, after: Consultation, action: str) -> None:
        await self.audit(after.id, actor, action, {})
        logger.info("%s consultation=%s clinician=%s", action, after.id, actor.subject)
        await self._notify_consultation(after, "consultation.updated", skip=actor.subject)
        self.wake()

    async def _after_end(
        self, actor: Actor | None, before: Consultation, after: Consultation
    ) -> None:
        if actor is not None:
            await self.audit(after.id, actor, "end", {"reason": after.ended_reason})
        else:
            await self._store.append_audit(
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
            await _safely(listener.on_consultation_ended(after.id), "consultation_ended", after.id)
        payload = {
            "consultation_id": after.id,
            "reason": after.ended_reason,
            "consultation": after.to_wire(),
        }
        for subject in _audience(before):
            await self._notifier.to_subject(subject, "consultation.ended", payload)
        self.wake()

    async def _tell_left(self, consultation_id: str, participant_id: str) -> None:
        for listener in self._listeners:
            await _safely(
                listener.on_participant_left(consultation_id, participant_id),
                "participant_left",
                consultation_id,
            )

    async def _notify_consultation(
        self, consultation: Consultation, event: str, skip: str | None = None
    ) -> None:
        payload = {"consultation": consultation.to_wire()}
        for subject in _audience(consultation):
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

    async def _entry_for(self, consultation: Consultation) -> QueueEntry:
        open_ = await self._store.open_consultations()
        entries = await self._entries(
            consultation.service, open_, await self._store.all_presence(), self._clock()
        )
        return next(e for e in entries if e.consultation_id == consultation.id)

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
            _require_owner(actor, c)
        else:
            _require_clinician(actor)
            _require_assigned(actor, c)


def _require_role(actor: Actor, role: Role) -> None:
    if actor.role is not role:
        raise Forbidden(f"only the {role.value} role may do that")


def _require_clinician(actor: Actor) -> None:
    if not actor.role.is_clinician:
        raise Forbidden("only specialists and counsellors may do that")


def _require_owner(actor: Actor, c: Consultation) -> None:
    if actor.role is not Role.OUTLET or c.outlet_id != actor.subject:
        raise Forbidden("this consultation belongs to another outlet")


def _require_assigned(actor: Actor, c: Consultation) -> None:
    if c.clinician_id != actor.subject:
        raise Forbidden("you are not the clinician of this consultation")


def _requeue(c: Consultation) -> None:
    """Back to waiting; ``queued_at`` is untouched, so the request keeps its place."""
    c.state = WAITING
    c.offered_to = None
    c.offer_expires_at = None


def _finish(c: Consultation, now: float, reason: str) -> None:
    c.state = ENDED
    c.ended_at = now
    c.ended_reason = reason
    c.offered_to = None
    c.offer_expires_at = None
    c.empty_since = None


def _mark_if_empty(c: Consultation, now: float) -> None:
    if not any(p.connected for p in c.admitted_participants()):
        c.empty_since = c.empty_since or now


def _concerns(actor: Actor, c: Consultation) -> bool:
    if actor.role is Role.OUTLET:
        return c.outlet_id == actor.subject
    if actor.role.is_clinician:
        return actor.subject in (c.clinician_id, c.offered_to)
    if actor.role is Role.GUEST:
        return c.id == actor.consultation_id and actor.subject in c.participants
    return False


def _audience(c: Consultation) -> list[str]:
    """Who hears about a consultation: its outlet, clinician and admitted participants."""
    subjects = [c.outlet_id]
    subjects += [s for s in (c.clinician_id,) if s]
    subjects += [
        p.participant_id
        for p in c.participants.values()
        if p.admitted and p.participant_id not in subjects
    ]
    return list(dict.fromkeys(subjects))


async def _safely(call: Any, what: str, consultation_id: str) -> None:
    try:
        await call
    except Exception:
        logger.exception("listener failed on %s consultation=%s", what, consultation_id)
