"""The ``schedule.*`` and ``appointment.*`` events: validated, handed to
:class:`~records.scheduling.Scheduling`."""

from __future__ import annotations

from typing import Any

from records.scheduling import BookRequest, Scheduling
from rooms.roles import CLINICIAN_ROLES, Role
from signaling.appointment_messages import (
    AppointmentRef,
    BookMessage,
    FollowUpsMessage,
    GetScheduleMessage,
    ListAppointmentsMessage,
    ProposeFollowUpMessage,
    SetScheduleMessage,
)
from signaling.dispatch import Ack, Caller, EventSpec, event

_STAFF = [Role.OUTLET, *CLINICIAN_ROLES, Role.ADMIN]
_BOOKERS = [Role.OUTLET, Role.ADMIN]


class AppointmentEvents:
    """Socket.IO handlers of clinic hours, appointments and follow-ups."""

    def __init__(self, scheduling: Scheduling) -> None:
        self._scheduling = scheduling

    def specs(self) -> list[EventSpec[Any]]:
        return [
            event("schedule.set", SetScheduleMessage, [*CLINICIAN_ROLES, Role.ADMIN], self.set),
            event("schedule.get", GetScheduleMessage, _STAFF, self.get),
            event("appointment.book", BookMessage, _BOOKERS, self.book),
            event("appointment.cancel", AppointmentRef, _BOOKERS, self.cancel),
            event("appointment.list", ListAppointmentsMessage, _STAFF, self.list),
            event("appointment.follow_ups", FollowUpsMessage, _BOOKERS, self.follow_ups),
            event("appointment.propose_follow_up", ProposeFollowUpMessage, _BOOKERS, self.propose),
        ]

    async def set(self, caller: Caller, msg: SetScheduleMessage) -> Ack:
        document = {
            "weekly": {day: [list(s) for s in spans] for day, spans in msg.weekly.items()},
            "exceptions": {day: [list(s) for s in spans] for day, spans in msg.exceptions.items()},
        }
        hours = await self._scheduling.set_hours(
            caller.identity, msg.clinician_id, msg.service, msg.slot_min, document
        )
        return {"ok": {"schedule": hours.to_wire()}}

    async def get(self, caller: Caller, msg: GetScheduleMessage) -> Ack:
        result: dict[str, Any] = {"timezone": self._scheduling.zone.key}
        if msg.date is not None:
            result["date"] = msg.date.isoformat()
            result["slots"] = await self._scheduling.day(
                caller.identity, msg.date, msg.service, msg.clinician_id
            )
        if msg.date is None or msg.clinician_id is not None:
            hours = await self._scheduling.hours(caller.identity, msg.clinician_id)
            result["schedules"] = [h.to_wire() for h in hours]
        return {"ok": result}

    async def book(self, caller: Caller, msg: BookMessage) -> Ack:
        appointment = await self._scheduling.book(
            caller.identity,
            BookRequest(
                msg.patient_id,
                msg.service,
                msg.start,
                msg.clinician_id,
                msg.outlet_id,
                msg.follow_up_of,
            ),
        )
        return {"ok": {"appointment": appointment.to_wire()}}

    async def cancel(self, caller: Caller, msg: AppointmentRef) -> Ack:
        appointment = await self._scheduling.cancel(caller.identity, msg.appointment_id)
        return {"ok": {"appointment": appointment.to_wire()}}

    async def list(self, caller: Caller, msg: ListAppointmentsMessage) -> Ack:
        appointments = await self._scheduling.between(
            caller.identity, msg.outlet_id, msg.clinician_id, msg.from_, msg.to
        )
        return {"ok": {"appointments": [a.to_wire() for a in appointments]}}

    async def follow_ups(self, caller: Caller, msg: FollowUpsMessage) -> Ack:
        due = await self._scheduling.follow_ups(
            caller.identity, msg.outlet_id, msg.from_, msg.to, msg.open_only
        )
        return {"ok": {"follow_ups": [f.to_wire() for f in due]}}

    async def propose(self, caller: Caller, msg: ProposeFollowUpMessage) -> Ack:
        proposal = await self._scheduling.propose_follow_up(caller.identity, msg.consultation_id)
        return {"ok": proposal}
