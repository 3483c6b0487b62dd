"""A small programme written straight into the records, whose figures are computed by hand in
``tests/records/test_stats.py`` (times are Asia/Shanghai local, stored as UTC)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from records.appointments import Booking
from records.facade import Records
from records.models import Visit
from records.reports import ReportAuthor, ReportContent
from tests.records.conftest import handover, nothing_else

ZONE = ZoneInfo("Asia/Shanghai")
# Two weeks from Monday 2 March 2026, local midnight.
START = datetime(2026, 3, 2, tzinfo=ZONE)
END = datetime(2026, 3, 16, tzinfo=ZONE)


def local(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=ZONE).astimezone(UTC)


async def write_programme(records: Records) -> dict[str, str]:
    """Write the fixture; returns the patient ids by name (p1, p2, p3)."""
    patients = {}
    for name in ("p1", "p2", "p3"):
        patient = await records.patients.register(
            name, 2020, "female", None, None, "o1", local(1, 5, 9), nothing_else
        )
        patients[name] = patient.patient_id
    # id, patient, service, outlet, clinician, check-in, wait min, length min, outcome
    visits = [
        ("v1", "p1", "gp", "o1", "d1", local(3, 2, 9), 4, 10, "completed"),
        ("v2", "p2", "gp", "o1", "d1", local(3, 2, 10), 12, 20, "completed"),
        ("v3", "p1", "gp", "o2", "d2", local(3, 3, 9), 30, 6, "referred"),
        ("v4", "p3", "derm", "o2", "d2", local(3, 10, 9), 70, 14, "completed"),
        ("v5", "p3", "derm", "o2", None, local(3, 10, 11), None, None, "cancelled"),
        ("v6", "p2", "gp", "o1", "d1", local(2, 20, 9), 1, 1, "completed"),
        ("v7", "p1", "gp", "o1", "d1", local(3, 16, 10), 2, 5, "completed"),
    ]
    for cid, who, service, outlet, clinician, at, wait, length, outcome in visits:
        started = None if wait is None else at + timedelta(minutes=wait)
        ended = (
            at + timedelta(minutes=5)
            if started is None
            else started + timedelta(minutes=length or 0)
        )
        await records.visits.keep(
            Visit(cid, patients[who], service, outlet, at, started, ended, clinician, None, outcome)
        )
    # consultation, follow-up days, referral, finalised at
    reports = [
        ("v1", 7, None, local(3, 2, 12)),
        ("v2", 3, None, local(3, 2, 12)),
        ("v3", 30, "eye clinic", local(3, 3, 12)),
        ("v4", 5, None, local(3, 10, 12)),
        ("v6", 14, None, local(2, 20, 12)),
    ]
    service_of = {v[0]: (v[1], v[2], v[4]) for v in visits}
    for cid, days, referral, at in reports:
        who, service, clinician = service_of[cid]
        author = ReportAuthor(cid, patients[who], service, clinician or "d2", "Dr")
        await records.reports.save_draft(author, _content(days, referral), at)
        await records.reports.finalise(cid, at, handover(records))
    # v4 amended: its newest final version asks for no follow-up.
    author = ReportAuthor("v4", patients["p3"], "derm", "d2", "Dr")
    await records.reports.amend(
        author, _content(None, None), "typo", local(3, 11, 12), handover(records)
    )
    # A draft never finalised counts nowhere.
    draft = ReportAuthor("v5", patients["p3"], "derm", "d2", "Dr")
    await records.reports.save_draft(draft, _content(2, "x"), local(3, 10, 12))
    bookings = [
        ("o1", "d1", "gp", local(3, 4, 10), "no_show"),
        ("o2", "d2", "derm", local(3, 11, 10), "checked_in"),
        ("o1", "d1", "gp", local(3, 12, 10), "cancelled"),
        ("o1", "d1", "gp", local(3, 20, 10), "no_show"),
    ]
    for outlet, clinician, service, start, status in bookings:
        booked = await records.appointments.book(
            Booking(
                patients["p1"],
                service,
                outlet,
                clinician,
                start,
                start + timedelta(minutes=15),
                "admin",
            ),
            local(3, 1, 9),
        )
        await records.appointments.change_status(
            booked.appointment_id, "booked", status, local(3, 1, 9)
        )
    return patients


def _content(days: int | None, referral: str | None) -> ReportContent:
    return ReportContent({}, "summary", "advice", referral, days, False)
