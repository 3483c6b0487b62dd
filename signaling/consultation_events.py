"""Consultation client events and the connection hooks (rooms, presence, ``session.ready``).

Handlers are thin: the dispatcher has validated the payload and the role; they call
:class:`ConsultationService` and shape the ack.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import socketio

from records.appointments import Appointment
from rooms.errors import StoreUnavailable
from rooms.models import Consultation, PresenceStatus, iso
from rooms.roles import CLINICIAN_ROLES, PARTICIPANT_ROLES, Role
from rooms.service import CheckIn, ConsultationService
from signaling.auth import Identity
from signaling.consultation_messages import (
    AcceptMessage,
    AdmitMessage,
    AuditListMessage,
    CheckInMessage,
    ConsentMessage,
    ConsultationRef,
    EmptyMessage,
    EndMessage,
    InviteMessage,
    NotesMessage,
    PresenceMessage,
    QueueListMessage,
    TransferMessage,
)
from signaling.dispatch import Ack, Caller, EventSpec, event
from signaling.errors import ProtocolError
from signaling.ice_servers import IceServerIssuer
from signaling.notifier import ADMINS_ROOM, service_room, subject_room

logger = logging.getLogger(__name__)

CARETAKERS = (Role.OUTLET, Role.SPECIALIST, Role.COUNSELLOR)


def _ok(result: Any) -> Ack:
    return {"ok": result}


def _view(consultation: Consultation, caller: Caller) -> dict[str, Any]:
    return consultation.to_wire(include_notes=consultation.clinician_id == caller.identity.subject)


class RegisteredPatients(Protocol):
    """Where a check-in's ``patient_id`` must be registered (the records database)."""

    async def require_patient(self, patient_id: str) -> object: ...


class BookedCheckIns(Protocol):
    """How a check-in with ``appointment_id`` claims the booking (records scheduling)."""

    async def claim_for_check_in(
        self, actor: Identity, appointment_id: str, patient_id: str | None, service: str
    ) -> Appointment: ...

    async def checked_in(
        self, actor: Identity, appointment: Appointment, consultation_id: str
    ) -> None: ...

    async def release(self, appointment: Appointment) -> None: ...


class ConsultationEvents:
    """The ``consultation.*``, ``presence.*``, ``queue.*``, ``audit.*`` and ``admin.*`` events."""

    def __init__(
        self,
        service: ConsultationService,
        patients: RegisteredPatients,
        appointments: BookedCheckIns | None = None,
    ) -> None:
        self._service = service
        self._patients = patients
        self._appointments = appointments

    def specs(self) -> list[EventSpec[Any]]:
        return [
            event("consultation.check_in", CheckInMessage, [Role.OUTLET], self.check_in),
            event("consultation.cancel", ConsultationRef, [Role.OUTLET], self.cancel),
            event("presence.set", PresenceMessage, CLINICIAN_ROLES, self.set_presence),
            event("queue.list", QueueListMessage, [*CLINICIAN_ROLES, Role.ADMIN], self.queue_list),
            event("consultation.accept", AcceptMessage, CLINICIAN_ROLES, self.accept),
            event("consultation.decline", ConsultationRef, CLINICIAN_ROLES, self.decline),
            event("consultation.join", ConsultationRef, PARTICIPANT_ROLES, self.join),
            event("consultation.leave", ConsultationRef, PARTICIPANT_ROLES, self.leave),
            event("consultation.end", EndMessage, [*CARETAKERS, Role.ADMIN], self.end),
            event("consultation.invite", InviteMessage, CARETAKERS, self.invite),
            event("consultation.admit", AdmitMessage, CLINICIAN_ROLES, self.admit),
            event("consultation.transfer", TransferMessage, CLINICIAN_ROLES, self.transfer),
            event("consultation.notes", NotesMessage, CLINICIAN_ROLES, self.notes),
            event("consultation.consent", ConsentMessage, CARETAKERS, self.consent),
            event("audit.list", AuditListMessage, [Role.ADMIN], self.audit_list),
            event("admin.overview", EmptyMessage, [Role.ADMIN], self.overview),
        ]

    async def check_in(self, caller: Caller, msg: CheckInMessage) -> Ack:
        if msg.patient_id is not None:
            await self._patients.require_patient(msg.patient_id)
        booked = await self._claim_booking(caller, msg)
        request = CheckIn(
            service=msg.service,
            outlet_id=msg.outlet_id,
            patient_ref=msg.patient_ref or "",
            patient_id=booked.patient_id if booked else msg.patient_id,
            guardian_present=msg.guardian_present,
            urgent=msg.urgent,
            appointment_at=(
                booked.start.timestamp()
                if booked
                else msg.appointment_at.timestamp()
                if msg.appointment_at
                else None
            ),
            appointment_id=booked.appointment_id if booked else None,
            preferred_clinician=booked.clinician_id if booked else None,
        )
        try:
            consultation, entry = await self._service.check_in(caller.identity, request)
        except BaseException:
            if booked is not None and self._appointments is not None:
                await self._appointments.release(booked)
            raise
        if booked is not None and self._appointments is not None:
            await self._appointments.checked_in(caller.identity, booked, consultation.id)
        return _ok(
            {
                "consultation_id": consultation.id,
                "consultation": consultation.to_wire(),
                "position": entry.position if entry else None,
                "estimated_wait_s": entry.to_wire()["estimated_wait_s"] if entry else None,
            }
        )

    async def _claim_booking(self, caller: Caller, msg: CheckInMessage) -> Appointment | None:
        if msg.appointment_id is None:
            return None
        if self._appointments is None:
            raise ProtocolError("bad_request", "appointments are not kept by this server")
        return await self._appointments.claim_for_check_in(
            caller.identity, msg.appointment_id, msg.patient_id, msg.service
        )

    async def cancel(self, caller: Caller, msg: ConsultationRef) -> Ack:
        consultation = await self._service.cancel(caller.identity, msg.consultation_id)
        return _ok({"consultation": consultation.to_wire()})

    async def set_presence(self, caller: Caller, msg: PresenceMessage) -> Ack:
        presence = await self._service.set_presence(
            caller.identity, PresenceStatus(msg.status), msg.services
        )
        return _ok({"status": presence.status.value, "services": list(presence.services)})

    async def queue_list(self, caller: Caller, msg: QueueListMessage) -> Ack:
        entries = await self._service.queue_list(caller.identity, msg.service)
        return _ok({"entries": [e.to_wire() for e in entries]})

    async def accept(self, caller: Caller, msg: AcceptMessage) -> Ack:
        take = self._service.pick if msg.pick else self._service.accept
        consultation = await take(caller.identity, msg.consultation_id)
        return _ok({"consultation": _view(consultation, caller)})

    async def decline(self, caller: Caller, msg: ConsultationRef) -> Ack:
        await self._service.decline(caller.identity, msg.consultation_id)
        return _ok({"consultation_id": msg.consultation_id})

    async def join(self, caller: Caller, msg: ConsultationRef) -> Ack:
        consultation = await self._service.join(caller.identity, msg.consultation_id)
        me = consultation.participants[caller.identity.subject]
        return _ok(
            {
                "consultation": _view(consultation, caller),
                "admitted": me.admitted,
                "participant_id": me.participant_id,
            }
        )

    async def leave(self, caller: Caller, msg: ConsultationRef) -> Ack:
        await self._service.leave(caller.identity, msg.consultation_id)
        return _ok({"consultation_id": msg.consultation_id})

    async def end(self, caller: Caller, msg: EndMessage) -> Ack:
        consultation = await self._service.end(caller.identity, msg.consultation_id, msg.reason)
        return _ok({"consultation": consultation.to_wire()})

    async def invite(self, caller: Caller, msg: InviteMessage) -> Ack:
        invite = await self._service.invite(
            caller.identity, msg.consultation_id, msg.guest_role, float(msg.ttl_s)
        )
        return _ok(
            {
                "invite_code": invite.code,
                "url": f"/join/{invite.code}",
                "expires_at": iso(invite.expires_at),
                "guest_role": invite.guest_role,
            }
        )

    async def admit(self, caller: Caller, msg: AdmitMessage) -> Ack:
        consultation = await self._service.admit(
            caller.identity, msg.consultation_id, msg.guest_id, msg.admit
        )
        return _ok({"consultation": _view(consultation, caller)})

    async def transfer(self, caller: Caller, msg: TransferMessage) -> Ack:
        consultation = await self._service.transfer(
            caller.identity, msg.consultation_id, msg.service, msg.clinician_id
        )
        return _ok({"consultation": consultation.to_wire()})

    async def notes(self, caller: Caller, msg: NotesMessage) -> Ack:
        await self._service.save_notes(caller.identity, msg.consultation_id, msg.notes)
        return _ok({"consultation_id": msg.consultation_id, "length": len(msg.notes)})

    async def consent(self, caller: Caller, msg: ConsentMessage) -> Ack:
        if msg.given:
            consent = await self._service.record_consent(
                caller.identity, msg.consultation_id, msg.purpose
            )
            return _ok({"consent": consent.to_wire()})
        await self._service.withdraw_consent(caller.identity, msg.consultation_id)
        return _ok({"consent": None})

    async def audit_list(self, caller: Caller, msg: AuditListMessage) -> Ack:
        events, next_cursor = await self._service.audit_log(
            caller.identity, msg.consultation_id, msg.cursor, msg.limit
        )
        return _ok(
            {
                "consultation_id": msg.consultation_id,
                "events": [e.to_wire() for e in events],
                "next_cursor": next_cursor,
            }
        )

    async def overview(self, caller: Caller, msg: EmptyMessage) -> Ack:
        return _ok(await self._service.overview(caller.identity))


class ConsultationConnections:
    """Connection hooks: join notification rooms, track presence, send ``session.ready``."""

    def __init__(
        self,
        service: ConsultationService,
        sio: socketio.AsyncServer,
        ice_servers: IceServerIssuer,
        rejoin_grace_s: float,
    ) -> None:
        self._service = service
        self._sio = sio
        self._ice_servers = ice_servers
        self._rejoin_grace_s = rejoin_grace_s

    async def on_connect(self, sid: str, identity: Identity) -> None:
        await self._sio.enter_room(sid, subject_room(identity.subject))
        if identity.role.is_clinician:
            for service in identity.services:
                await self._sio.enter_room(sid, service_room(service))
        if identity.role is Role.ADMIN:
            await self._sio.enter_room(sid, ADMINS_ROOM)
        try:
            resumable = await self._service.connected(identity, sid)
        except StoreUnavailable as exc:
            logger.warning("connection refused sid=%s code=unavailable", sid)
            raise socketio.exceptions.ConnectionRefusedError(
                exc.message, {"code": exc.code}
            ) from None
        await self._sio.emit("session.ready", self._ready(sid, identity, resumable), to=sid)

    async def on_disconnect(self, sid: str, identity: Identity) -> None:
        self._ice_servers.forget(sid)
        try:
            await self._service.disconnected(identity, sid)
        except StoreUnavailable:
            # Its heartbeat has stopped: once the store is back, the rounds mark it as gone.
            logger.warning(
                "disconnect not recorded (store unreachable) sid=%s subject=%s",
                sid,
                identity.subject,
            )

    async def _emit_to(self, event: str, payload: dict[str, Any], sid: str) -> None:
        await self._sio.emit(event, payload, to=sid)

    def _ready(self, sid: str, identity: Identity, resumable: list[Consultation]) -> dict[str, Any]:
        # The most advanced consultation first: an active room matters more than a queue place.
        rank = {"active": 0, "offered": 1, "waiting": 2}
        ordered = sorted(resumable, key=lambda c: (rank.get(c.state.value, 3), c.created_at))
        views = [c.to_wire(include_notes=c.clinician_id == identity.subject) for c in ordered]
        return {
            "identity": {
                "subject": identity.subject,
                "role": identity.role.value,
                "name": identity.name,
                "services": sorted(identity.services),
                "consultation_id": identity.consultation_id,
            },
            **self._ice_servers.ready_fields(sid, identity, self._emit_to),
            "rejoin_grace_s": self._rejoin_grace_s,
            "resume": {"consultation": views[0], "consultations": views} if views else None,
        }
