"""A demonstration year of the programme (``teleconsult db seed-demo``): outlets, clinicians,
children, consultations, reports and appointments with plausible shapes, written in bulk.

Names are invented (``Child 123``) and sealed like real ones, so the seeded database reads like
a real one through every facade; it exists to try the pages and to time the programme figures.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, text

from records.appointments import BOOKED, CANCELLED, CHECKED_IN, NO_SHOW
from records.codes import new_code
from records.facade import Records
from records.patients import CARD_CODE_LENGTH
from records.tables import AppointmentRow, PatientRow, ReportRow, ScheduleRow, VisitRow

SERVICES = ("ophthalmology", "hearing", "development", "nutrition")
OUTCOMES = ("completed", "referred", "cancelled", "no_show", "technical")
OUTCOME_WEIGHTS = (86.0, 6.0, 4.0, 2.0, 2.0)
_BATCH = 5000


@dataclass(frozen=True)
class DemoShape:
    """How big the demonstration programme is, and the last day of its year."""

    outlets: int = 600
    clinicians: int = 120
    consultations: int = 100_000
    days: int = 365
    end: datetime = datetime(2026, 12, 1, tzinfo=UTC)
    seed: int = 1


@dataclass(frozen=True)
class SeedSummary:
    patients: int
    visits: int
    reports: int
    appointments: int


class DatabaseNotEmpty(Exception):
    """The records already hold consultations: the demonstration is not mixed into them."""


async def seed_demo(
    records: Records, shape: DemoShape, progress: Callable[[str], None] = lambda _: None
) -> SeedSummary:
    """Write the demonstration year into an empty (migrated, opened) records database."""
    db = records.database
    async with db.transaction() as session:
        if (await session.scalar(select(func.count()).select_from(VisitRow))) or 0:
            raise DatabaseNotEmpty("the records database already holds consultations")
    rng = random.Random(shape.seed)
    start = shape.end - timedelta(days=shape.days)
    outlets = [f"outlet-{i:03d}" for i in range(shape.outlets)]
    clinicians = [f"clinician-{i:03d}" for i in range(shape.clinicians)]
    covers = {c: SERVICES[i % len(SERVICES)] for i, c in enumerate(clinicians)}
    by_service = {s: [c for c in clinicians if covers[c] == s] for s in SERVICES}
    seal = records.sealer.seal

    patients: list[dict[str, Any]] = []
    home: list[str] = []
    for index in range(shape.consultations * 2 // 5):
        pid = f"demo-p{index:06d}"
        code = new_code(CARD_CODE_LENGTH)
        outlet = rng.choice(outlets)
        home.append(outlet)
        patients.append(
            {
                "patient_id": pid,
                "card_hash": records.sealer.lookup_hash(code),
                "card_sealed": seal(code, "patients", pid, "card_code"),
                "name_sealed": seal(f"Child {index}", "patients", pid, "display_name"),
                "birth_year": rng.randint(2010, 2024),
                "sex": rng.choice(("female", "male")),
                "guardian_name_sealed": None,
                "guardian_phone_sealed": None,
                "registered_outlet": outlet,
                "registered_at": start,
            }
        )
    await _insert(records, PatientRow, patients, progress)

    visits: list[dict[str, Any]] = []
    reports: list[dict[str, Any]] = []
    for index in range(shape.consultations):
        who = rng.randrange(len(patients))
        service = SERVICES[who % len(SERVICES)]
        cid = f"demo-c{index:06d}"
        # Clinics run in the daytime: check-ins between 08:00 and 17:00 of the zone (UTC+8).
        day = rng.randrange(shape.days)
        checked_in = start + timedelta(days=day, hours=rng.uniform(0, 9))
        outcome = rng.choices(OUTCOMES, OUTCOME_WEIGHTS)[0]
        started = ended = clinician = None
        if outcome not in ("cancelled", "no_show"):
            started = checked_in + timedelta(seconds=rng.lognormvariate(6.5, 0.8))
            ended = started + timedelta(seconds=rng.uniform(300, 1500))
            clinician = rng.choice(by_service[service])
        else:
            ended = checked_in + timedelta(minutes=rng.uniform(1, 60))
        visits.append(
            {
                "consultation_id": cid,
                "patient_id": patients[who]["patient_id"],
                "service": service,
                "outlet_id": home[who],
                "checked_in_at": checked_in,
                "started_at": started,
                "ended_at": ended,
                "clinician_id": clinician,
                "clinician_name_sealed": None,
                "outcome": outcome,
                # The figures' facts (records.visit_facts), as every write keeps them.
                "wait_s": None if started is None else (started - checked_in).total_seconds(),
                "length_s": None if started is None else (ended - started).total_seconds(),
                "follow_up_due_s": None,
                "follow_up_kept": False,
                "report_finalised_at": None,
                "report_refers": False,
            }
        )
        if clinician is not None and ended is not None and rng.random() < 0.9:
            row_id = f"{cid}/1"
            body: dict[str, Any] = {
                "findings": {},
                "summary": "demo",
                "advice": "",
                "referral": None,
            }
            days = rng.choice((None, None, 30, 90, 180))
            finalised = ended + timedelta(minutes=10)
            visits[-1]["report_finalised_at"] = finalised
            visits[-1]["report_refers"] = outcome == "referred"
            if days is not None:
                visits[-1]["follow_up_due_s"] = checked_in.timestamp() + days * 86400.0
            reports.append(
                {
                    "consultation_id": cid,
                    "patient_id": patients[who]["patient_id"],
                    "service": service,
                    "version": 1,
                    "status": "final",
                    "body_sealed": seal(json.dumps(body), "reports", row_id, "body"),
                    "follow_up_days": days,
                    "has_referral": outcome == "referred",
                    "shared_with_family": False,
                    "clinician_id": clinician,
                    "clinician_name_sealed": seal(clinician, "reports", row_id, "clinician_name"),
                    "saved_at": ended,
                    "finalised_at": finalised,
                }
            )
    _mark_across_visits(visits)
    await _insert(records, VisitRow, visits, progress)
    await _insert(records, ReportRow, reports, progress)

    appointments = _appointments(rng, visits, covers, start, shape)
    await _insert(records, AppointmentRow, appointments, progress)
    weekly = {
        d: [["09:00", "12:00"], ["13:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")
    }
    await _insert(
        records,
        ScheduleRow,
        [
            {
                "clinician_id": c,
                "service": covers[c],
                "slot_min": 15,
                "document": {"weekly": weekly, "exceptions": {}},
                "updated_at": start,
                "updated_by": "demo",
            }
            for c in clinicians
        ],
        progress,
    )
    if db.dialect == "postgresql":
        # After a bulk load, what autovacuum would do a little later: the planner's statistics
        # and the visibility map that lets index-only scans skip the table.
        async with db.engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text("VACUUM ANALYZE"))
    return SeedSummary(len(patients), len(visits), len(reports), len(appointments))


def _mark_across_visits(visits: Sequence[dict[str, Any]]) -> None:
    """The facts that depend on a patient's other visits (:mod:`records.visit_facts`): whether
    a later consultation of the same service started, and when the patient was last checked
    in, and seen, before (at the same outlet, service, clinician)."""
    ordered = sorted(visits, key=lambda v: (v["checked_in_at"], v["consultation_id"]))
    latest_start: dict[tuple[str, str], datetime] = {}
    for visit in reversed(ordered):
        key = (visit["patient_id"], visit["service"])
        later = latest_start.get(key)
        visit["follow_up_kept"] = later is not None and later > visit["checked_in_at"]
        if visit["started_at"] is not None:
            latest_start.setdefault(key, visit["checked_in_at"])
    last: dict[tuple[str, ...], datetime] = {}
    for visit in ordered:
        patient = visit["patient_id"]
        visit["visited_before_at"] = last.get(("visited", patient))
        scopes = {
            column: ("seen", patient, *(visit[c] for c in same))
            for column, same in _SEEN_SCOPES.items()
        }
        for column, scope in scopes.items():
            visit[column] = last.get(scope)
        last["visited", patient] = visit["checked_in_at"]
        if visit["started_at"] is not None:
            for scope in scopes.values():
                last[scope] = visit["checked_in_at"]


# The "seen before" columns and what else the earlier visit shares besides the patient.
_SEEN_SCOPES = {
    "seen_before_at": (),
    "seen_before_at_outlet": ("outlet_id",),
    "seen_before_at_service": ("service",),
    "seen_before_at_clinician": ("clinician_id",),
}


def _appointments(
    rng: random.Random,
    visits: Sequence[dict[str, Any]],
    covers: dict[str, str],
    start: datetime,
    shape: DemoShape,
) -> list[dict[str, Any]]:
    """A booking behind about one consultation in five, and the no-shows and cancellations
    that never became one; slots are distinct per clinician (the unique index holds)."""
    taken: set[tuple[str, datetime]] = set()
    rows: list[dict[str, Any]] = []
    for visit in visits:
        if visit["clinician_id"] is None or rng.random() > 0.2:
            continue
        slot = visit["checked_in_at"].replace(second=0, microsecond=0)
        slot -= timedelta(minutes=slot.minute % 15)
        for status in (CHECKED_IN, rng.choices((NO_SHOW, CANCELLED, BOOKED), (6, 3, 1))[0]):
            clinician = visit["clinician_id"] if status == CHECKED_IN else rng.choice(list(covers))
            at = (
                slot + timedelta(minutes=15 * rng.randrange(1, 8)) if status != CHECKED_IN else slot
            )
            if status in (CHECKED_IN, BOOKED) and (clinician, at) in taken:
                continue
            taken.add((clinician, at))
            rows.append(
                {
                    "appointment_id": f"demo-a{len(rows):06d}",
                    "patient_id": visit["patient_id"],
                    "service": covers[clinician],
                    "outlet_id": visit["outlet_id"],
                    "clinician_id": clinician,
                    "start_at": at,
                    "end_at": at + timedelta(minutes=15),
                    "status": status,
                    "booked_by": visit["outlet_id"],
                    "booked_at": start,
                    "follow_up_of": None,
                    "consultation_id": visit["consultation_id"] if status == CHECKED_IN else None,
                    "reminded_at": None,
                    "changed_at": at,
                }
            )
    return rows


async def _insert(
    records: Records, table: type[Any], rows: list[dict[str, Any]], progress: Callable[[str], None]
) -> None:
    for first in range(0, len(rows), _BATCH):
        async with records.database.transaction() as session:
            # Core executemany on the table: the ORM's bulk path costs ten times more per row.
            connection = await session.connection()
            await connection.execute(insert(table.__table__), rows[first : first + _BATCH])
    progress(f"{table.__tablename__}: {len(rows)}")
