"""Clinic hours and appointments: who may publish and book (``rooms.access``), which slots the
hours give, bookings, cancellations, check-in of a booking, the no-show sweep and follow-ups.

Times on the wire are UTC instants; days (``"2026-03-02"``) and clinic hours are local times of
the programme's zone (the ``timezone`` setting).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from records.appointments import (
    BOOKED,
    CANCELLED,
    CHECKED_IN,
    NO_SHOW,
    Appointment,
    Booking,
    FollowUp,
)
from records.clinic_hours import ClinicHours, hours_of
from records.columns import utc
from records.errors import InvalidSchedule, NotASlot, SlotTaken, TooManyBookings
from records.facade import Records
from records.models import iso
from rooms import access
from rooms.audit import SYSTEM, AuditAction
from rooms.errors import Conflict, Forbidden, InvalidState, NotFound
from rooms.models import AuditEvent
from rooms.notify import Actor
from rooms.roles import Role

logger = logging.getLogger(__name__)

MAX_RANGE_DAYS = 62
NO_SHOW_BATCH = 200


@dataclass(frozen=True)
class SchedulingConfig:
    """The programme's zone, when a booking not checked in becomes a no-show, how far ahead one
    may book."""

    zone: ZoneInfo
    no_show_after_s: float = 15 * 60.0
    max_days_ahead: int = 365
    max_bookings_per_patient: int = 10


@dataclass(frozen=True)
class BookRequest:
    patient_id: str
    service: str
    start: datetime
    clinician_id: str | None = None
    outlet_id: str | None = None
    follow_up_of: str | None = None


class Scheduling:
    """Clinic hours and appointments over the records database."""

    def __init__(
        self,
        records: Records,
        config: SchedulingConfig,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._records = records
        self._config = config
        self._clock = clock

    @property
    def zone(self) -> ZoneInfo:
        return self._config.zone

    # ----- clinic hours ------------------------------------------------------------------------

    async def set_hours(
        self,
        actor: Actor,
        clinician_id: str | None,
        service: str,
        slot_min: int,
        document: dict[str, Any],
    ) -> ClinicHours:
        """Publish a clinician's hours for a service (replacing earlier ones)."""
        clinician = clinician_id or actor.subject
        access.require_schedule_write(actor, clinician)
        if actor.role is not Role.ADMIN and service not in actor.services:
            raise Forbidden("you publish hours only for services your token grants")
        try:
            hours = hours_of(clinician, service, slot_min, document)
        except ValueError as exc:
            raise InvalidSchedule(str(exc)) from exc
        await self._records.schedule.set(hours, actor.subject, self._now())
        await self._audit(
            actor, AuditAction.SCHEDULE_SET, None, {"clinician_id": clinician, "service": service}
        )
        return hours

    async def hours(self, actor: Actor, clinician_id: str | None) -> list[ClinicHours]:
        """A clinician's published hours (their own without ``clinician_id``)."""
        clinician = clinician_id or actor.subject
        if actor.role is Role.GUEST:
            raise Forbidden("guests do not read clinic hours")
        return await self._records.schedule.of_clinician(clinician)

    async def day(
        self, actor: Actor, day: date, service: str | None, clinician_id: str | None
    ) -> list[dict[str, Any]]:
        """The slots of a local day, each with its booking: for one clinician (a clinician's own
        day, all services) or for everyone covering a service (what an outlet books from).
        Outlets see only whether a slot is free, and their own bookings."""
        if actor.role is Role.GUEST:
            raise Forbidden("guests do not read clinic hours")
        if clinician_id is None and service is None:
            clinician_id = actor.subject
        if clinician_id is not None:
            all_hours = await self._records.schedule.of_clinician(clinician_id)
            all_hours = [h for h in all_hours if service in (None, h.service)]
        else:
            assert service is not None
            all_hours = await self._records.schedule.covering(service)
        start = datetime.combine(day, datetime.min.time(), self.zone)
        booked = await self._records.appointments.between(
            start, start + timedelta(days=1), clinician_id=clinician_id
        )
        taken = {(a.clinician_id, a.start): a for a in booked if a.status in (BOOKED, CHECKED_IN)}
        slots = []
        for hours in all_hours:
            for begin, end in hours.slots_on(day, self.zone):
                appointment = taken.pop((hours.clinician_id, begin), None)
                slots.append(
                    {
                        "clinician_id": hours.clinician_id,
                        "service": hours.service,
                        "start": iso(begin),
                        "end": iso(end),
                        "free": appointment is None,
                        "appointment": self._visible(actor, appointment),
                    }
                )
        # Bookings outside today's hours (the hours changed after booking) are still shown.
        for appointment in taken.values():
            slots.append(
                {
                    "clinician_id": appointment.clinician_id,
                    "service": appointment.service,
                    "start": iso(appointment.start),
                    "end": iso(appointment.end),
                    "free": False,
                    "appointment": self._visible(actor, appointment),
                }
            )
        slots.sort(key=lambda s: (s["start"], s["clinician_id"]))
        return slots

    # ----- appointments ------------------------------------------------------------------------

    async def book(self, actor: Actor, request: BookRequest) -> Appointment:
        """Book a slot of the clinician's hours (or of the first clinician with that slot free);
        ``conflict`` when it is taken."""
        outlet_id = request.outlet_id or actor.subject
        access.require_booking(actor, outlet_id)
        if actor.role is Role.ADMIN and request.outlet_id is None:
            raise InvalidSchedule("an admin books for an outlet: give outlet_id")
        now = self._now()
        if request.start <= now:
            raise InvalidState("that time has passed")
        if request.start > now + timedelta(days=self._config.max_days_ahead):
            raise InvalidSchedule(f"book at most {self._config.max_days_ahead} days ahead")
        if await self._records.patients.get(request.patient_id) is None:
            raise NotFound("no such patient")
        ahead = await self._records.appointments.active_of_patient(request.patient_id, now)
        if ahead >= self._config.max_bookings_per_patient:
            raise TooManyBookings(
                f"this child already has {ahead} appointments to come, the most allowed"
            )
        if request.clinician_id is not None:
            hours = await self._records.schedule.get(request.clinician_id, request.service)
            candidates = [] if hours is None else [hours]
        else:
            candidates = await self._records.schedule.covering(request.service)
        fitting = [(h, h.slot_at(request.start, self.zone)) for h in candidates]
        open_slots = [(h, slot) for h, slot in fitting if slot is not None]
        if not open_slots:
            raise NotASlot()
        for hours, (start, end) in open_slots:
            try:
                appointment = await self._records.appointments.book(
                    Booking(
                        request.patient_id,
                        request.service,
                        outlet_id,
                        hours.clinician_id,
                        start,
                        end,
                        actor.subject,
                        request.follow_up_of,
                    ),
                    now,
                )
            except SlotTaken:
                continue
            await self._audit(actor, AuditAction.APPOINTMENT_BOOKED, appointment, {})
            logger.info(
                "booked appointment=%s outlet=%s clinician=%s",
                appointment.appointment_id,
                outlet_id,
                appointment.clinician_id,
            )
            return appointment
        raise SlotTaken()

    async def cancel(self, actor: Actor, appointment_id: str) -> Appointment:
        appointment = await self._get(appointment_id)
        access.require_booking(actor, appointment.outlet_id)
        cancelled = await self._records.appointments.change_status(
            appointment_id, BOOKED, CANCELLED, self._now()
        )
        if cancelled is None:
            raise InvalidState("only a booked appointment (not checked in) can be cancelled")
        await self._audit(actor, AuditAction.APPOINTMENT_CANCELLED, cancelled, {})
        return cancelled

    async def between(
        self,
        actor: Actor,
        outlet_id: str | None,
        clinician_id: str | None,
        start: datetime,
        end: datetime,
    ) -> list[Appointment]:
        if outlet_id is None and clinician_id is None and actor.role is not Role.ADMIN:
            if actor.role is Role.OUTLET:
                outlet_id = actor.subject
            else:
                clinician_id = actor.subject
        access.require_appointment_list(actor, outlet_id, clinician_id)
        _check_range(start, end)
        return await self._records.appointments.between(start, end, outlet_id, clinician_id)

    async def claim_for_check_in(
        self, actor: Actor, appointment_id: str, patient_id: str | None, service: str
    ) -> Appointment:
        """The outlet checks a booked child in: the booking becomes ``checked_in`` (once)."""
        appointment = await self._get(appointment_id)
        access.require_booking(actor, appointment.outlet_id)
        if patient_id not in (None, appointment.patient_id) or service != appointment.service:
            raise Conflict("this appointment is for another patient or service")
        claimed = await self._records.appointments.change_status(
            appointment_id, BOOKED, CHECKED_IN, self._now()
        )
        if claimed is None:
            raise InvalidState(f"this appointment is {appointment.status}, not booked")
        return claimed

    async def checked_in(
        self, actor: Actor, appointment: Appointment, consultation_id: str
    ) -> None:
        """Link the booking to its consultation, audited."""
        await self._records.appointments.link(appointment.appointment_id, consultation_id)
        await self._audit(
            actor,
            AuditAction.APPOINTMENT_CHECKED_IN,
            appointment,
            {"consultation_id": consultation_id},
        )

    async def release(self, appointment: Appointment) -> None:
        """The check-in failed after the claim: the booking is ``booked`` again."""
        await self._records.appointments.change_status(
            appointment.appointment_id, CHECKED_IN, BOOKED, self._now()
        )

    async def sweep_no_shows(self) -> int:
        """Bookings not checked in ``no_show_after`` past their start become ``no_show``,
        each audited; returns how many (one process runs this at a time; each change is
        conditional anyway)."""
        now = self._now()
        cutoff = now - timedelta(seconds=self._config.no_show_after_s)
        marked = 0
        for appointment in await self._records.appointments.missed(cutoff, NO_SHOW_BATCH):
            missed = await self._records.appointments.change_status(
                appointment.appointment_id, BOOKED, NO_SHOW, now
            )
            if missed is not None:
                marked += 1
                await self._audit(SYSTEM, AuditAction.APPOINTMENT_NO_SHOW, missed, {})
                logger.info("no-show appointment=%s", missed.appointment_id)
        return marked

    # ----- follow-ups --------------------------------------------------------------------------

    async def follow_ups(
        self, actor: Actor, outlet_id: str | None, start: datetime, end: datetime, open_only: bool
    ) -> list[FollowUp]:
        """Who is due back in ``[start, end)`` (and, ``open_only``, has not come back)."""
        if actor.role is Role.OUTLET:
            outlet_id = outlet_id or actor.subject
            if outlet_id != actor.subject:
                raise Forbidden("an outlet reads its own follow-ups")
        elif actor.role is not Role.ADMIN:
            raise Forbidden("only outlets and admins read the follow-up list")
        _check_range(start, end, max_days=400)
        return await self._records.appointments.follow_ups(start, end, outlet_id, open_only)

    async def propose_follow_up(self, actor: Actor, consultation_id: str) -> dict[str, Any]:
        """The follow-up a final report asked for: its due day and the first free slot of the
        same clinician (else anyone covering the service) from that day on, for the outlet to
        confirm with ``appointment.book``."""
        visit = await self._records.visits.get(consultation_id)
        if visit is None or visit.patient_id is None:
            raise NotFound("no such consultation of a registered patient")
        access.require_booking(actor, visit.outlet_id)
        reports = await self._records.reports.latest_final([consultation_id])
        report = reports.get(consultation_id)
        if report is None or report.follow_up_days is None:
            raise InvalidState("this consultation's final report asks for no follow-up")
        due = visit.checked_in_at + timedelta(days=report.follow_up_days)
        slot = await self._first_free(visit.service, visit.clinician_id, due)
        return {
            "consultation_id": consultation_id,
            "patient_id": visit.patient_id,
            "service": visit.service,
            "due": iso(due),
            "proposal": slot,
        }

    async def _first_free(
        self, service: str, clinician_id: str | None, due: datetime
    ) -> dict[str, Any] | None:
        everyone = await self._records.schedule.covering(service)
        preferred = [h for h in everyone if h.clinician_id == clinician_id]
        others = [h for h in everyone if h.clinician_id != clinician_id]
        first_day = max(due, self._now()).astimezone(self.zone).date()
        for group in (preferred, others):
            if not group:
                continue
            for offset in range(14):
                day = first_day + timedelta(days=offset)
                start = datetime.combine(day, datetime.min.time(), self.zone)
                booked = await self._records.appointments.between(start, start + timedelta(days=1))
                taken = {
                    (a.clinician_id, a.start) for a in booked if a.status in (BOOKED, CHECKED_IN)
                }
                for hours in group:
                    for begin, end in hours.slots_on(day, self.zone):
                        if begin > self._now() and (hours.clinician_id, begin) not in taken:
                            return {
                                "clinician_id": hours.clinician_id,
                                "start": iso(begin),
                                "end": iso(end),
                            }
        return None

    # ----- helpers -----------------------------------------------------------------------------

    async def _get(self, appointment_id: str) -> Appointment:
        appointment = await self._records.appointments.get(appointment_id)
        if appointment is None:
            raise NotFound("no such appointment")
        return appointment

    def _visible(self, actor: Actor, appointment: Appointment | None) -> dict[str, Any] | None:
        if appointment is None:
            return None
        if actor.role is Role.OUTLET and appointment.outlet_id != actor.subject:
            return None
        return appointment.to_wire()

    async def _audit(
        self,
        actor: Actor,
        action: AuditAction,
        appointment: Appointment | None,
        details: dict[str, Any],
    ) -> None:
        if appointment is not None:
            details = {
                "appointment_id": appointment.appointment_id,
                "start": iso(appointment.start),
                "clinician_id": appointment.clinician_id,
                **details,
            }
        await self._records.audit.append_patient_event(
            AuditEvent(
                "",
                self._clock(),
                actor.subject,
                actor.role.value,
                action.value,
                details,
                None if appointment is None else appointment.patient_id,
            )
        )

    def _now(self) -> datetime:
        return utc(self._clock())


def _check_range(start: datetime, end: datetime, max_days: int = MAX_RANGE_DAYS) -> None:
    if not start < end <= start + timedelta(days=max_days):
        raise InvalidSchedule(f"give from before to, at most {max_days} days apart")
