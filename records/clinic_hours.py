"""Clinic hours as pure values: weekly intervals and dated exceptions in the programme's local
time, and the slots they give on a day (as aware UTC times)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_SLOT_MIN = 15
MAX_INTERVALS_PER_DAY = 6
MAX_EXCEPTIONS = 120
END_OF_DAY = "24:00"

Interval = tuple[time, time]


@dataclass(frozen=True)
class ClinicHours:
    """When one clinician covers one service. ``exceptions`` replace the weekly hours on their
    date (an empty list: not working that day)."""

    clinician_id: str
    service: str
    slot_min: int = DEFAULT_SLOT_MIN
    weekly: dict[str, tuple[Interval, ...]] = field(default_factory=dict)
    exceptions: dict[date, tuple[Interval, ...]] = field(default_factory=dict)

    def intervals_on(self, day: date) -> tuple[Interval, ...]:
        if day in self.exceptions:
            return self.exceptions[day]
        return self.weekly.get(WEEKDAYS[day.weekday()], ())

    def slots_on(self, day: date, zone: ZoneInfo) -> list[tuple[datetime, datetime]]:
        """Every slot of ``day`` (local), as UTC start and end, in order."""
        step = timedelta(minutes=self.slot_min)
        slots = []
        for begin, end in self.intervals_on(day):
            at = datetime.combine(day, begin, zone)
            close = (
                datetime.combine(day + timedelta(days=1), time(), zone)
                if end == time.max
                else datetime.combine(day, end, zone)
            )
            while at + step <= close:
                slots.append((at.astimezone(UTC), (at + step).astimezone(UTC)))
                at += step
        return slots

    def slot_at(self, start: datetime, zone: ZoneInfo) -> tuple[datetime, datetime] | None:
        """The slot beginning exactly at ``start``, if the hours have one."""
        local_day = start.astimezone(zone).date()
        wanted = start.astimezone(UTC)
        return next((s for s in self.slots_on(local_day, zone) if s[0] == wanted), None)

    def document(self) -> dict[str, Any]:
        """The stored and wire form (``HH:MM`` local times, ISO dates)."""
        return {
            "weekly": {
                day: _wire_intervals(self.weekly[day]) for day in WEEKDAYS if day in self.weekly
            },
            "exceptions": {
                day.isoformat(): _wire_intervals(spans)
                for day, spans in sorted(self.exceptions.items())
            },
        }

    def to_wire(self) -> dict[str, Any]:
        return {
            "clinician_id": self.clinician_id,
            "service": self.service,
            "slot_min": self.slot_min,
            **self.document(),
        }


def hours_of(
    clinician_id: str, service: str, slot_min: int, document: dict[str, Any]
) -> ClinicHours:
    """Parse and check a document (from the wire or the database); :class:`ValueError` if bad."""
    weekly_doc = document.get("weekly", {})
    exceptions_doc = document.get("exceptions", {})
    if not isinstance(weekly_doc, dict) or not isinstance(exceptions_doc, dict):
        raise ValueError("weekly and exceptions are objects")
    unknown = set(weekly_doc) - set(WEEKDAYS)
    if unknown:
        raise ValueError(f"weekly days are {', '.join(WEEKDAYS)}")
    if len(exceptions_doc) > MAX_EXCEPTIONS:
        raise ValueError(f"at most {MAX_EXCEPTIONS} dated exceptions")
    if not 5 <= slot_min <= 240:
        raise ValueError("slot_min is between 5 and 240 minutes")
    return ClinicHours(
        clinician_id,
        service,
        slot_min,
        {day: _intervals(spans) for day, spans in weekly_doc.items()},
        {date.fromisoformat(day): _intervals(spans) for day, spans in exceptions_doc.items()},
    )


def _intervals(spans: Any) -> tuple[Interval, ...]:
    if not isinstance(spans, list) or len(spans) > MAX_INTERVALS_PER_DAY:
        raise ValueError(f"a day has a list of at most {MAX_INTERVALS_PER_DAY} [from, to] pairs")
    result: list[Interval] = []
    for span in spans:
        if not isinstance(span, list | tuple) or len(span) != 2:
            raise ValueError('an interval is ["HH:MM", "HH:MM"]')
        begin, end = (_time_of(str(t)) for t in span)
        if begin >= end:
            raise ValueError("an interval ends after it begins")
        result.append((begin, end))
    result.sort()
    if any(a[1] > b[0] for a, b in zip(result, result[1:], strict=False)):
        raise ValueError("a day's intervals overlap")
    return tuple(result)


def _time_of(text: str) -> time:
    # "24:00" closes a day that runs to midnight.
    return time.max if text == END_OF_DAY else time.fromisoformat(text)


def _wire_time(at: time) -> str:
    return END_OF_DAY if at == time.max else at.strftime("%H:%M")


def _wire_intervals(spans: tuple[Interval, ...]) -> list[list[str]]:
    return [[_wire_time(a), _wire_time(b)] for a, b in spans]
