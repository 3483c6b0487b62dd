"""Payload models of the clinic-hours and appointment events (see docs/protocol.md)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BeforeValidator, Field, StringConstraints, model_validator

from records.clinic_hours import DEFAULT_SLOT_MIN, MAX_EXCEPTIONS, MAX_INTERVALS_PER_DAY, WEEKDAYS
from signaling.consultation_messages import Id, Message, ServiceName, WireTime

HourMinute = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")]
Span = Annotated[list[HourMinute], Field(min_length=2, max_length=2)]
DaySpans = Annotated[list[Span], Field(max_length=MAX_INTERVALS_PER_DAY)]
Weekday = Annotated[str, StringConstraints(pattern="^(" + "|".join(WEEKDAYS) + ")$")]


def _day_text(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError("a day is YYYY-MM-DD text")
    return date.fromisoformat(value)


# A local day of the programme's zone, as ISO text.
Day = Annotated[date, BeforeValidator(_day_text)]
DayKey = Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$")]


class SetScheduleMessage(Message):
    clinician_id: Id | None = None
    service: ServiceName
    slot_min: Annotated[int, Field(ge=5, le=240)] = DEFAULT_SLOT_MIN
    weekly: Annotated[dict[Weekday, DaySpans], Field(max_length=7)] = {}
    exceptions: Annotated[dict[DayKey, DaySpans], Field(max_length=MAX_EXCEPTIONS)] = {}


class GetScheduleMessage(Message):
    clinician_id: Id | None = None
    # With a day: that day's slots (one clinician, or everyone covering ``service``).
    date: Day | None = None
    service: ServiceName | None = None


class BookMessage(Message):
    patient_id: Id
    service: ServiceName
    start: WireTime
    clinician_id: Id | None = None
    # Admins book for an outlet; an outlet for itself.
    outlet_id: Id | None = None
    # The consultation whose report asked for this follow-up.
    follow_up_of: Id | None = None


class AppointmentRef(Message):
    appointment_id: Id


class ListAppointmentsMessage(Message):
    outlet_id: Id | None = None
    clinician_id: Id | None = None
    from_: Annotated[WireTime, Field(alias="from")]
    to: WireTime

    @model_validator(mode="after")
    def _one_owner(self) -> ListAppointmentsMessage:
        if self.outlet_id is not None and self.clinician_id is not None:
            raise ValueError("give outlet_id or clinician_id, not both")
        return self


class FollowUpsMessage(Message):
    outlet_id: Id | None = None
    from_: Annotated[WireTime, Field(alias="from")]
    to: WireTime
    # Only those who have not come back (the default), or every follow-up due.
    open_only: bool = True


class ProposeFollowUpMessage(Message):
    consultation_id: Id
