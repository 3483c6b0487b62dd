"""The figures' facts on the visit rows: filled by migration 0005 for visits written under 0004
(and read through migration 0006's indexes), kept by every write, and written by the
demonstration seed as the SQL definition has them; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, true

from records.database import RecordsDatabase
from records.demo_seed import DemoShape, seed_demo
from records.facade import Records
from records.models import Visit
from records.stats import StatsQuery
from records.tables import PatientRow, ReportRow, VisitRow
from records.visit_facts import facts_update
from tests.conftest import open_records

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
FACTS = (
    "wait_s",
    "length_s",
    "follow_up_due_s",
    "follow_up_kept",
    "report_finalised_at",
    "report_refers",
    "visited_before_at",
    "seen_before_at",
    "seen_before_at_outlet",
    "seen_before_at_service",
    "seen_before_at_clinician",
)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


async def facts_of(database: RecordsDatabase) -> dict[str, dict[str, Any]]:
    columns = [getattr(VisitRow, name) for name in FACTS]
    async with database.transaction() as session:
        rows = await session.execute(select(VisitRow.consultation_id, *columns))
        return {row[0]: dict(zip(FACTS, row[1:], strict=True)) for row in rows}


def _visit(cid: str, outlet: str, checked_in: float, started: float | None, clinician: str | None):
    return {
        "consultation_id": cid,
        "patient_id": "p1",
        "service": "gp",
        "outlet_id": outlet,
        "checked_in_at": at(checked_in),
        "started_at": None if started is None else at(started),
        "ended_at": None if started is None else at(started + 10),
        "clinician_id": clinician,
        "clinician_name_sealed": None,
        "outcome": "completed" if started is not None else "cancelled",
    }


def _report(cid: str, version: int, status: str, days: int | None, referral: bool, when: float):
    return {
        "consultation_id": cid,
        "patient_id": "p1",
        "service": "gp",
        "version": version,
        "status": status,
        "body_sealed": b"x",
        "follow_up_days": days,
        "has_referral": referral,
        "shared_with_family": False,
        "clinician_id": "d1",
        "clinician_name_sealed": b"x",
        "saved_at": at(when),
        "finalised_at": None if status == "draft" else at(when),
    }


async def test_migration_fills_the_facts_of_visits_written_under_0004(records_url: str) -> None:
    database = RecordsDatabase(records_url)
    try:
        await database.migrate_to("0004")
        async with database.transaction() as session:
            connection = await session.connection()
            await connection.execute(
                insert(PatientRow.__table__),
                [
                    {
                        "patient_id": "p1",
                        "card_hash": "h",
                        "card_sealed": b"x",
                        "name_sealed": b"x",
                        "birth_year": 2020,
                        "sex": "female",
                        "registered_outlet": "o1",
                        "registered_at": at(0),
                    }
                ],
            )
            await connection.execute(
                insert(VisitRow.__table__),
                [
                    _visit("v1", "o1", 0, 4, "d1"),
                    _visit("v2", "o2", 60, None, None),
                    _visit("v3", "o1", 120, 150, "d2"),
                ],
            )
            await connection.execute(
                insert(ReportRow.__table__),
                [
                    _report("v1", 1, "final", 7, False, 30),
                    _report("v1", 2, "final", 14, True, 40),
                    _report("v3", 1, "draft", 3, True, 160),
                ],
            )
    finally:
        await database.close()

    records = await open_records(records_url)
    try:
        assert await records.database.revision() == "0006"
        facts = await facts_of(records.database)
        v1, v2, v3 = facts["v1"], facts["v2"], facts["v3"]
        assert v1["wait_s"] == 240.0
        assert v1["length_s"] == 600.0
        # The newest final version asks 14 days; the first was finalised at 30 min; it refers.
        assert abs(v1["follow_up_due_s"] - (at(0).timestamp() + 14 * 86400)) < 0.01
        assert v1["report_finalised_at"] == at(30)
        assert v1["report_refers"] is True
        # v3 (same patient and service) started later: v1's follow-up was kept.
        assert v1["follow_up_kept"] is True
        assert v1["visited_before_at"] is None and v1["seen_before_at"] is None
        assert (v2["wait_s"], v2["length_s"], v2["follow_up_due_s"]) == (None, None, None)
        assert v2["follow_up_kept"] is True
        assert v2["visited_before_at"] == at(0)
        assert v2["seen_before_at_outlet"] is None  # v1 was at another outlet
        # A draft counts for nothing.
        assert (v3["report_finalised_at"], v3["report_refers"]) == (None, False)
        assert v3["follow_up_kept"] is False
        assert (v3["visited_before_at"], v3["seen_before_at"]) == (at(60), at(0))
        assert v3["seen_before_at_outlet"] == at(0)
        assert v3["seen_before_at_clinician"] is None  # d2 had not seen p1
        figures = await records.stats.figures(StatsQuery(at(0), at(24 * 60), at(0)))
        assert figures["totals"]["people_served"] == 1
        assert figures["totals"]["reports_finalised"] == 1
        assert figures["totals"]["referrals"] == 1
        # Migration 0006's grouping indexes are built over the migrated rows.
        by_outlet = await records.stats.figures(
            StatsQuery(at(0), at(24 * 60), at(0), group_by="outlet")
        )
        o1, o2 = by_outlet["groups"]
        assert (o1["key"], o1["consultations"], o1["people_served"]) == ("o1", 2, 1)
        assert (o1["wait_p50_s"], o1["wait_p90_s"]) == (1020.0, 1644.0)
        assert (o1["reports_finalised"], o1["referrals"]) == (1, 1)
        assert (o2["key"], o2["consultations"], o2["people_served"]) == ("o2", 1, 0)
    finally:
        await records.close()


async def test_a_visit_written_later_changes_its_patients_earlier_visits(records: Records) -> None:
    patient = await records.patients.register(
        "Li", 2019, "female", None, None, "o1", at(0), lambda _: []
    )
    pid = patient.patient_id
    await records.visits.keep(Visit("v1", pid, "gp", "o1", at(10), at(12), at(20), "d1", "D", None))
    before = (await facts_of(records.database))["v1"]
    assert before["follow_up_kept"] is False
    # Checked in before v1 and seen: v1's patient was seen before; v1 was followed by nothing.
    await records.visits.keep(Visit("v0", pid, "gp", "o1", at(0), at(1), at(5), "d1", "D", None))
    # Checked in after v1 and started: v1 is now followed up.
    await records.visits.keep(Visit("v2", pid, "gp", "o1", at(30), at(31), None, "d1", "D", None))
    facts = await facts_of(records.database)
    assert facts["v1"]["follow_up_kept"] is True
    assert facts["v1"]["seen_before_at"] == at(0)
    assert facts["v1"]["seen_before_at_clinician"] == at(0)
    assert facts["v2"]["seen_before_at"] == at(10)
    assert facts["v2"]["length_s"] is None
    assert facts["v0"]["visited_before_at"] is None


async def test_the_seed_writes_what_the_sql_definition_computes(records: Records) -> None:
    shape = DemoShape(outlets=4, clinicians=4, consultations=300, days=30)
    await seed_demo(records, shape)
    seeded = await facts_of(records.database)
    async with records.database.transaction() as session:
        await session.execute(facts_update(records.database.dialect, true()))
    recomputed = await facts_of(records.database)
    assert seeded.keys() == recomputed.keys()
    for cid, facts in seeded.items():
        for name, value in facts.items():
            again = recomputed[cid][name]
            if isinstance(value, float):
                assert abs(value - again) < 1e-5, (cid, name)
            else:
                assert value == again, (cid, name, value, again)
