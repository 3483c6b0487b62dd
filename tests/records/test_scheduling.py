"""Scheduling on both engines: one winner of a slot race, time zones, the no-show sweep (one
runner across processes), follow-up proposals, and the reminder webhook's signature and
retries against a receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web

from records.appointment_sweep import AppointmentSweeper
from records.errors import SlotTaken, TooManyBookings
from records.facade import Records
from records.models import Visit
from records.reminder_webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    ReminderWebhook,
    WebhookConfig,
    signature,
)
from records.reports import ReportAuthor, ReportContent
from records.scheduling import BookRequest, Scheduling, SchedulingConfig
from rooms.errors import Forbidden
from rooms.memory_store import MemoryStore
from rooms.roles import Role
from signaling.auth import Identity
from tests.conftest import free_port
from tests.records.conftest import handover, nothing_else
from web.settings import Settings, SettingsError

ZONE = ZoneInfo("Asia/Shanghai")
# Monday 2 March 2026, 08:00 in Shanghai (00:00 UTC).
NOW = datetime(2026, 3, 2, 8, tzinfo=ZONE)
SECRET = "webhook-secret-" + "w" * 40


@dataclass
class Clock:
    at: datetime = NOW

    def __call__(self) -> float:
        return self.at.timestamp()


def who(role: Role, subject: str) -> Identity:
    return Identity(subject, role, subject, frozenset({"gp"}), None, NOW.timestamp() + 86400, "t")


OUTLET = who(Role.OUTLET, "o1")
ADMIN = who(Role.ADMIN, "admin")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def scheduling(records: Records, clock: Clock) -> Scheduling:
    plan = Scheduling(records, SchedulingConfig(ZONE, 15 * 60.0), clock)
    weekly = {"mon": [["09:00", "12:00"]], "tue": [["09:00", "12:00"]]}
    for doctor in ("d1", "d2"):
        await plan.set_hours(ADMIN, doctor, "gp", 20, {"weekly": weekly, "exceptions": {}})
    return plan


async def patient(records: Records) -> str:
    made = await records.patients.register(
        "c", 2019, "male", None, "+86 1", "o1", NOW, nothing_else
    )
    return made.patient_id


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=ZONE)


async def test_slots_are_local_hours_stored_as_utc(scheduling: Scheduling) -> None:
    slots = await scheduling.day(ADMIN, date(2026, 3, 2), "gp", None)
    # 09:00-12:00 in 20-minute slots, for two clinicians.
    assert len(slots) == 2 * 9
    assert slots[0]["start"] == "2026-03-02T01:00:00Z"  # 09:00 in Shanghai
    assert slots[-1]["end"] == "2026-03-02T04:00:00Z"
    assert await scheduling.day(ADMIN, date(2026, 3, 4), "gp", None) == []
    # A day that runs to "24:00" has its last slot end at midnight.
    all_day = {"weekly": {"wed": [["00:00", "24:00"]]}}
    await scheduling.set_hours(ADMIN, "d9", "night", 30, all_day)
    night = await scheduling.day(ADMIN, date(2026, 3, 4), "night", None)
    assert len(night) == 48 and night[-1]["end"] == "2026-03-04T16:00:00Z"


async def test_one_winner_when_bookings_race(records: Records, scheduling: Scheduling) -> None:
    patients = [await patient(records) for _ in range(6)]
    start = local(2, 9, 20)
    results = await asyncio.gather(
        *(scheduling.book(OUTLET, BookRequest(p, "gp", start, "d1")) for p in patients),
        return_exceptions=True,
    )
    won = [r for r in results if not isinstance(r, BaseException)]
    assert len(won) == 1
    assert all(isinstance(r, SlotTaken) for r in results if isinstance(r, BaseException))
    # Without a clinician named, the next free clinician's slot is taken, then none is left.
    second = await scheduling.book(OUTLET, BookRequest(patients[1], "gp", start))
    assert second.clinician_id == "d2"
    with pytest.raises(SlotTaken):
        await scheduling.book(OUTLET, BookRequest(patients[2], "gp", start))


async def test_no_show_after_the_grace_once_and_audited(
    records: Records, scheduling: Scheduling, clock: Clock
) -> None:
    start = local(2, 9)
    kept = await scheduling.book(OUTLET, BookRequest(await patient(records), "gp", start, "d1"))
    missed = await scheduling.book(OUTLET, BookRequest(await patient(records), "gp", start, "d2"))
    await scheduling.claim_for_check_in(OUTLET, kept.appointment_id, None, "gp")
    clock.at = start + timedelta(minutes=14)
    assert await scheduling.sweep_no_shows() == 0
    clock.at = start + timedelta(minutes=16)
    locks = MemoryStore()
    sweepers = [
        AppointmentSweeper(records, scheduling, locks, None, 60.0, 3600.0, clock) for _ in range(2)
    ]
    # Two processes' sweeps at once: one takes the lock, the other does nothing.
    results = await asyncio.gather(*(s.sweep() for s in sweepers))
    assert sorted(results) == [(0, 0), (1, 0)]
    after = await records.appointments.get(missed.appointment_id)
    assert after is not None and after.status == "no_show"
    checked = await records.appointments.get(kept.appointment_id)
    assert checked is not None and checked.status == "checked_in"
    audit = await records.audit.audit_for_patient(missed.patient_id, 10)
    assert [e.action for e in audit].count("appointment_no_show") == 1
    assert await scheduling.sweep_no_shows() == 0


async def test_follow_up_proposal_prefers_the_same_clinician(
    records: Records, scheduling: Scheduling, clock: Clock
) -> None:
    child = await patient(records)
    seen = local(2, 9)
    await records.visits.keep(
        Visit(
            "c1",
            child,
            "gp",
            "o1",
            seen,
            seen,
            seen + timedelta(minutes=9),
            "d2",
            None,
            "completed",
        )
    )
    author = ReportAuthor("c1", child, "gp", "d2", "Dr")
    await records.reports.save_draft(author, ReportContent({}, "", "", None, 1, False), seen)
    await records.reports.finalise("c1", seen, handover(records))
    proposal = await scheduling.propose_follow_up(OUTLET, "c1")
    # Due on Tuesday 09:00; d2's first Tuesday slot.
    assert proposal["due"] == "2026-03-03T01:00:00Z"
    assert proposal["proposal"] == {
        "clinician_id": "d2",
        "start": "2026-03-03T01:00:00Z",
        "end": "2026-03-03T01:20:00Z",
    }
    start = datetime.fromisoformat(proposal["proposal"]["start"])
    booked = await scheduling.book(OUTLET, BookRequest(child, "gp", start, "d2", None, "c1"))
    assert booked.follow_up_of == "c1"
    due = await scheduling.follow_ups(OUTLET, None, local(2, 0), local(9, 0), True)
    assert [(f.consultation_id, f.kept, f.booked) for f in due] == [
        ("c1", False, booked.appointment_id)
    ]
    # The child came back: the follow-up is kept and leaves the open list.
    back = local(3, 9)
    await records.visits.keep(Visit("c2", child, "gp", "o1", back, back, None, "d2", None, None))
    assert await scheduling.follow_ups(OUTLET, None, local(2, 0), local(9, 0), True) == []
    every = await scheduling.follow_ups(OUTLET, None, local(2, 0), local(9, 0), False)
    assert [f.kept for f in every] == [True]
    other = who(Role.OUTLET, "o2")
    with pytest.raises(Exception, match="own"):
        await scheduling.follow_ups(other, "o1", local(2, 0), local(9, 0), True)


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 that fails the first ``failures`` requests."""

    failures: int
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        if len(self.requests) <= self.failures:
            return web.Response(status=503)
        return web.Response(status=204)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    got = Receiver(failures=2)
    app = web.Application()
    app.router.add_post("/hook", got.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield got, f"http://127.0.0.1:{port}/hook"
    await runner.cleanup()


async def test_reminder_is_signed_retried_and_every_attempt_kept(
    records: Records,
    scheduling: Scheduling,
    clock: Clock,
    receiver: tuple[Receiver, str],
) -> None:
    got, url = receiver
    booked = await scheduling.book(
        OUTLET, BookRequest(await patient(records), "gp", local(2, 10), "d1")
    )
    webhook = ReminderWebhook(records.database, WebhookConfig(url, SECRET, 4, 0.01), ZONE, clock)
    sweeper = AppointmentSweeper(records, scheduling, MemoryStore(), webhook, 60.0, 86400.0, clock)
    assert await sweeper.sweep() == (0, 1)
    assert len(got.requests) == 3  # two 503s, then 204
    for headers, body in got.requests:
        assert headers[SIGNATURE_HEADER] == signature(SECRET, headers[TIMESTAMP_HEADER], body)
        assert headers["Idempotency-Key"] == booked.appointment_id
    payload = json.loads(got.requests[-1][1])
    assert payload["event"] == "appointment.reminder"
    assert payload["appointment"]["appointment_id"] == booked.appointment_id
    assert payload["local_start"] == "2026-03-02T10:00:00+08:00"
    assert payload["guardian_phone"] == "+86 1"
    attempts = await webhook.attempts(booked.appointment_id)
    assert [(a[0], a[2]) for a in attempts] == [(1, 503), (2, 503), (3, 204)]
    # Reminded once: the next sweep sends nothing.
    assert await sweeper.sweep() == (0, 0)
    assert len(got.requests) == 3


async def test_reminder_gives_up_after_its_tries(
    records: Records, scheduling: Scheduling, clock: Clock
) -> None:
    booked = await scheduling.book(
        OUTLET, BookRequest(await patient(records), "gp", local(2, 10), "d1")
    )
    closed = f"http://127.0.0.1:{free_port()}/hook"
    webhook = ReminderWebhook(records.database, WebhookConfig(closed, SECRET, 3, 0.01), ZONE, clock)
    sweeper = AppointmentSweeper(records, scheduling, MemoryStore(), webhook, 60.0, 86400.0, clock)
    assert await sweeper.sweep() == (0, 0)
    attempts = await webhook.attempts(booked.appointment_id)
    assert [(a[0], a[2]) for a in attempts] == [(1, None), (2, None), (3, None)]
    assert all(a[3] for a in attempts)
    audit = await records.audit.audit_for_patient(booked.patient_id, 10)
    reminded = [e for e in audit if e.action == "appointment_reminded"]
    assert len(reminded) == 1 and reminded[0].details["delivered"] is False


async def test_a_child_has_a_bounded_number_of_bookings_to_come(
    records: Records, scheduling: Scheduling
) -> None:
    child = await patient(records)
    # Ten slots of Monday and Tuesday mornings, then one too many.
    starts = [local(2, 9) + timedelta(minutes=20 * i) for i in range(9)] + [local(3, 9)]
    for start in starts:
        await scheduling.book(OUTLET, BookRequest(child, "gp", start, "d1"))
    with pytest.raises(TooManyBookings):
        await scheduling.book(OUTLET, BookRequest(child, "gp", local(3, 9, 20), "d1"))


async def test_a_clinician_publishes_hours_only_for_services_it_covers(
    scheduling: Scheduling,
) -> None:
    doctor = who(Role.SPECIALIST, "d3")
    hours = await scheduling.set_hours(doctor, None, "gp", 15, {"weekly": {}, "exceptions": {}})
    assert hours.clinician_id == "d3"
    with pytest.raises(Forbidden):
        await scheduling.set_hours(doctor, None, "dentistry", 15, {"weekly": {}})
    with pytest.raises(Forbidden):
        await scheduling.set_hours(doctor, "d1", "gp", 15, {"weekly": {}})


def test_reminder_settings_are_checked() -> None:
    good = Settings(reminder_webhook_url="http://127.0.0.1:9/hook", reminder_webhook_secret=SECRET)
    assert good.validated().reminder_webhook_url == "http://127.0.0.1:9/hook"
    with pytest.raises(SettingsError, match="too weak"):
        Settings(
            reminder_webhook_url="https://x.example/h", reminder_webhook_secret="s"
        ).validated()
    with pytest.raises(SettingsError, match="https"):
        replace(good, production=True, secret="p" * 48).validated()
    with pytest.raises(SettingsError, match="time zone"):
        Settings(timezone="Mars/Olympus").validated()
