"""Appointments in SQL: booked slots, their check-in, cancellation and no-show, the reminders
due, and the follow-ups a final report asked for."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Select, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from records.database import RecordsDatabase
from records.errors import SlotTaken
from records.models import iso
from records.tables import AppointmentRow, ReportRow, VisitRow
from records.visit_facts import newest_final

BOOKED = "booked"
CHECKED_IN = "checked_in"
CANCELLED = "cancelled"
NO_SHOW = "no_show"
ACTIVE = (BOOKED, CHECKED_IN)
MAX_LISTED = 500


@dataclass(frozen=True)
class Appointment:
    """A booked slot of one clinician for one registered patient."""

    appointment_id: str
    patient_id: str
    service: str
    outlet_id: str
    clinician_id: str
    start: datetime
    end: datetime
    status: str
    follow_up_of: str | None = None
    consultation_id: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return {
            "appointment_id": self.appointment_id,
            "patient_id": self.patient_id,
            "service": self.service,
            "outlet_id": self.outlet_id,
            "clinician_id": self.clinician_id,
            "start": iso(self.start),
            "end": iso(self.end),
            "status": self.status,
            "follow_up_of": self.follow_up_of,
            "consultation_id": self.consultation_id,
        }


@dataclass(frozen=True)
class Booking:
    """What is booked, by whom and when."""

    patient_id: str
    service: str
    outlet_id: str
    clinician_id: str
    start: datetime
    end: datetime
    booked_by: str
    follow_up_of: str | None = None


@dataclass(frozen=True)
class FollowUp:
    """A consultation whose final report asked the patient back, and whether they came."""

    consultation_id: str
    patient_id: str
    service: str
    outlet_id: str
    clinician_id: str | None
    seen_at: datetime
    due: datetime
    kept: bool
    booked: str | None

    def to_wire(self) -> dict[str, Any]:
        return {
            "consultation_id": self.consultation_id,
            "patient_id": self.patient_id,
            "service": self.service,
            "outlet_id": self.outlet_id,
            "clinician_id": self.clinician_id,
            "seen_at": iso(self.seen_at),
            "due": iso(self.due),
            "kept": self.kept,
            "appointment_id": self.booked,
        }


class AppointmentRecords:
    """The ``appointments`` table."""

    def __init__(self, database: RecordsDatabase) -> None:
        self._db = database

    async def book(self, booking: Booking, at: datetime) -> Appointment:
        """Insert the booking; :class:`SlotTaken` when an active one holds the slot (the unique
        index decides, so two processes racing for one slot get one winner)."""
        row = AppointmentRow(
            appointment_id="a-" + uuid.uuid4().hex,
            patient_id=booking.patient_id,
            service=booking.service,
            outlet_id=booking.outlet_id,
            clinician_id=booking.clinician_id,
            start_at=booking.start,
            end_at=booking.end,
            status=BOOKED,
            booked_by=booking.booked_by,
            booked_at=at,
            follow_up_of=booking.follow_up_of,
            changed_at=at,
        )
        try:
            async with self._db.transaction() as session:
                session.add(row)
        except IntegrityError as exc:
            raise SlotTaken() from exc
        return _appointment_of(row)

    async def active_of_patient(self, patient_id: str, now: datetime) -> int:
        """How many booked appointments the patient has from ``now`` on."""
        statement = select(func.count()).where(
            AppointmentRow.patient_id == patient_id,
            AppointmentRow.status == BOOKED,
            AppointmentRow.start_at >= now,
        )

        async def query(session: AsyncSession) -> int:
            return int(await session.scalar(statement) or 0)

        return await self._db.read(query)

    async def get(self, appointment_id: str) -> Appointment | None:
        async def query(session: AsyncSession) -> Appointment | None:
            row = await session.get(AppointmentRow, appointment_id)
            return None if row is None else _appointment_of(row)

        return await self._db.read(query)

    async def change_status(
        self,
        appointment_id: str,
        from_: str,
        to: str,
        at: datetime,
        consultation_id: str | None = None,
    ) -> Appointment | None:
        """Move one appointment from ``from_`` to ``to``; ``None`` if it was not in ``from_``
        (a conditional update: of two processes, one wins)."""
        values: dict[str, Any] = {"status": to, "changed_at": at}
        if consultation_id is not None:
            values["consultation_id"] = consultation_id
        async with self._db.transaction() as session:
            result = cast(
                CursorResult[Any],
                await session.execute(
                    update(AppointmentRow)
                    .where(
                        AppointmentRow.appointment_id == appointment_id,
                        AppointmentRow.status == from_,
                    )
                    .values(**values)
                ),
            )
            if result.rowcount != 1:
                return None
            row = await session.get(AppointmentRow, appointment_id, populate_existing=True)
            return None if row is None else _appointment_of(row)

    async def link(self, appointment_id: str, consultation_id: str) -> None:
        """Note the consultation a checked-in appointment became."""
        async with self._db.transaction() as session:
            await session.execute(
                update(AppointmentRow)
                .where(AppointmentRow.appointment_id == appointment_id)
                .values(consultation_id=consultation_id)
            )

    async def between(
        self,
        start: datetime,
        end: datetime,
        outlet_id: str | None = None,
        clinician_id: str | None = None,
    ) -> list[Appointment]:
        """Appointments starting in ``[start, end)`` (of an outlet or a clinician), in order."""
        statement = select(AppointmentRow).where(
            AppointmentRow.start_at >= start, AppointmentRow.start_at < end
        )
        if outlet_id is not None:
            statement = statement.where(AppointmentRow.outlet_id == outlet_id)
        if clinician_id is not None:
            statement = statement.where(AppointmentRow.clinician_id == clinician_id)
        return await self._list(statement.order_by(AppointmentRow.start_at).limit(MAX_LISTED))

    async def missed(self, started_before: datetime, limit: int) -> list[Appointment]:
        """Booked appointments whose start is before ``started_before`` (no check-in yet)."""
        statement = (
            select(AppointmentRow)
            .where(AppointmentRow.status == BOOKED, AppointmentRow.start_at < started_before)
            .order_by(AppointmentRow.start_at)
            .limit(limit)
        )
        return await self._list(statement)

    async def to_remind(self, now: datetime, until: datetime, limit: int) -> list[Appointment]:
        """Booked appointments starting in ``[now, until)`` not yet reminded."""
        statement = (
            select(AppointmentRow)
            .where(
                AppointmentRow.status == BOOKED,
                AppointmentRow.start_at >= now,
                AppointmentRow.start_at < until,
                AppointmentRow.reminded_at.is_(None),
            )
            .order_by(AppointmentRow.start_at)
            .limit(limit)
        )
        return await self._list(statement)

    async def mark_reminded(self, appointment_id: str, at: datetime) -> bool:
        """Claim the reminder (``False``: another process already did)."""
        async with self._db.transaction() as session:
            result = cast(
                CursorResult[Any],
                await session.execute(
                    update(AppointmentRow)
                    .where(
                        AppointmentRow.appointment_id == appointment_id,
                        AppointmentRow.reminded_at.is_(None),
                    )
                    .values(reminded_at=at)
                ),
            )
            return bool(result.rowcount == 1)

    async def follow_ups(
        self, due_from: datetime, due_to: datetime, outlet_id: str | None, open_only: bool
    ) -> list[FollowUp]:
        """Consultations whose latest final report asked the patient back within
        ``[due_from, due_to)`` (due = check-in time + ``follow_up_days``), each marked kept when
        the patient had a later consultation of the same service that started."""
        statement = follow_up_query(due_from, due_to, outlet_id)
        if open_only:
            statement = statement.where(~VisitRow.follow_up_kept)

        async def query(session: AsyncSession) -> list[FollowUp]:
            result = await session.execute(statement.limit(MAX_LISTED))
            return [
                FollowUp(
                    r.consultation_id,
                    r.patient_id,
                    r.service,
                    r.outlet_id,
                    r.clinician_id,
                    r.checked_in_at,
                    r.checked_in_at + timedelta(days=r.follow_up_days),
                    bool(r.kept),
                    r.booked,
                )
                for r in result
            ]

        return await self._db.read(query)

    async def _list(self, statement: Select[AppointmentRow]) -> list[Appointment]:
        async def query(session: AsyncSession) -> list[Appointment]:
            return [_appointment_of(row) for row in await session.scalars(statement)]

        return await self._db.read(query)


_booked = aliased(AppointmentRow)


def follow_up_query(due_from: datetime, due_to: datetime, outlet_id: str | None) -> Select[Any]:
    """The follow-ups due in the window, through the facts kept on the visit rows
    (:mod:`records.visit_facts`)."""
    statement = (
        select(
            VisitRow.consultation_id,
            VisitRow.patient_id,
            VisitRow.service,
            VisitRow.outlet_id,
            VisitRow.clinician_id,
            VisitRow.checked_in_at,
            newest_final(ReportRow.follow_up_days).label("follow_up_days"),
            VisitRow.follow_up_kept.label("kept"),
            select(_booked.appointment_id)
            .where(_booked.follow_up_of == VisitRow.consultation_id, _booked.status.in_(ACTIVE))
            .limit(1)
            .scalar_subquery()
            .label("booked"),
        )
        .where(
            VisitRow.follow_up_due_s >= due_from.timestamp(),
            VisitRow.follow_up_due_s < due_to.timestamp(),
        )
        .order_by(VisitRow.checked_in_at)
    )
    if outlet_id is not None:
        statement = statement.where(VisitRow.outlet_id == outlet_id)
    return statement


def _appointment_of(row: AppointmentRow) -> Appointment:
    return Appointment(
        row.appointment_id,
        row.patient_id,
        row.service,
        row.outlet_id,
        row.clinician_id,
        row.start_at,
        row.end_at,
        row.status,
        row.follow_up_of,
        row.consultation_id,
    )
