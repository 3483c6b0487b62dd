"""The programme figures against a hand-computed fixture, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from records.appointments import Booking
from records.facade import Records
from records.models import Visit
from records.stats import StatsQuery
from tests.records.programme_fixture import END, START, local, write_programme


def _query(**kwargs: str) -> StatsQuery:
    return replace(StatsQuery(START, END, START), **kwargs)


async def test_totals_are_exact(records: Records) -> None:
    await write_programme(records)
    figures = await records.stats.figures(_query())
    assert figures["totals"] == {
        # v1..v5 checked in within the range; p1, p2, p3 were seen (v5 never started).
        "people_served": 3,
        "consultations": 5,
        "outcomes": {"completed": 3, "referred": 1, "cancelled": 1},
        # waits 240, 720, 1800, 4200 s: p50 between 720 and 1800, p90 at 2.7 of 3.
        "wait_p50_s": 1260.0,
        "wait_p90_s": 3480.0,
        # lengths 360, 600, 840, 1200 s.
        "length_p50_s": 720.0,
        "length_p90_s": 1092.0,
        # three bookings start in the range (the fourth after it): one no-show.
        "appointments": 3,
        "no_shows": 1,
        # due: v1 (9 Mar), v2 (5 Mar), v6 (6 Mar); v4's newest final version asks none;
        # kept: v1 (p1 came back in v3), v6 (p2 came back in v2); v2's p2 did not come back.
        "follow_ups_due": 3,
        "follow_ups_kept": 2,
        # v1, v2, v3, v4 finalised in the range (v4 twice, counted once); v3 refers.
        "reports_finalised": 4,
        "referrals": 1,
    }
    assert figures["groups"] == []


async def test_by_outlet(records: Records) -> None:
    await write_programme(records)
    figures = await records.stats.figures(_query(group_by="outlet"))
    by_key = {g["key"]: g for g in figures["groups"]}
    assert set(by_key) == {"o1", "o2"}
    o1, o2 = by_key["o1"], by_key["o2"]
    assert (o1["consultations"], o1["people_served"]) == (2, 2)
    assert (o1["wait_p50_s"], o1["wait_p90_s"]) == (480.0, 672.0)
    assert (o1["appointments"], o1["no_shows"]) == (2, 1)
    assert (o1["follow_ups_due"], o1["follow_ups_kept"]) == (3, 2)
    assert (o1["reports_finalised"], o1["referrals"]) == (2, 0)
    assert (o2["consultations"], o2["people_served"]) == (3, 2)
    assert (o2["wait_p50_s"], o2["wait_p90_s"]) == (3000.0, 3960.0)
    assert o2["outcomes"] == {"referred": 1, "completed": 1, "cancelled": 1}
    assert (o2["appointments"], o2["no_shows"]) == (1, 0)
    assert (o2["reports_finalised"], o2["referrals"]) == (2, 1)
    assert figures["totals"]["consultations"] == 5


async def test_by_service(records: Records) -> None:
    await write_programme(records)
    figures = await records.stats.figures(_query(group_by="service"))
    assert [g["key"] for g in figures["groups"]] == ["derm", "gp"]
    derm, gp = figures["groups"]
    # gp: v1, v2, v3; p2 was seen for gp before the range (v6) but not in it: p1 and p2.
    assert (gp["consultations"], gp["people_served"]) == (3, 2)
    # waits 240, 720, 1800 s; lengths 360, 600, 1200 s.
    assert (gp["wait_p50_s"], gp["wait_p90_s"]) == (720.0, 1584.0)
    assert (gp["length_p50_s"], gp["length_p90_s"]) == (600.0, 1080.0)
    assert gp["outcomes"] == {"completed": 2, "referred": 1}
    assert (gp["follow_ups_due"], gp["follow_ups_kept"]) == (3, 2)
    assert (gp["reports_finalised"], gp["referrals"]) == (3, 1)
    assert (gp["appointments"], gp["no_shows"]) == (2, 1)
    # derm: v4 started, v5 never did.
    assert (derm["consultations"], derm["people_served"]) == (2, 1)
    assert (derm["wait_p50_s"], derm["wait_p90_s"]) == (4200.0, 4200.0)
    assert (derm["length_p50_s"], derm["length_p90_s"]) == (840.0, 840.0)
    assert derm["outcomes"] == {"completed": 1, "cancelled": 1}
    assert (derm["follow_ups_due"], derm["follow_ups_kept"]) == (0, 0)
    assert (derm["reports_finalised"], derm["referrals"]) == (1, 0)
    assert (derm["appointments"], derm["no_shows"]) == (1, 0)
    totals = figures["totals"]
    assert (totals["consultations"], totals["people_served"]) == (5, 3)
    assert (totals["wait_p50_s"], totals["wait_p90_s"]) == (1260.0, 3480.0)
    assert (totals["reports_finalised"], totals["follow_ups_due"]) == (4, 3)
    assert [w["consultations"] for w in figures["weeks"]] == [3, 2]


async def test_by_clinician_with_a_consultation_no_one_took(records: Records) -> None:
    await write_programme(records)
    figures = await records.stats.figures(_query(group_by="clinician"))
    assert [g["key"] for g in figures["groups"]] == ["", "d1", "d2"]
    nobody, d1, d2 = figures["groups"]
    # v5 was never taken: grouped under "", counted, with no wait or length.
    assert (nobody["consultations"], nobody["people_served"]) == (1, 0)
    assert (nobody["wait_p50_s"], nobody["length_p90_s"]) == (None, None)
    assert nobody["outcomes"] == {"cancelled": 1}
    assert (nobody["appointments"], nobody["follow_ups_due"]) == (0, 0)
    # d1: v1, v2 (p2 was d1's before the range, in v6); waits 240, 720; lengths 600, 1200.
    assert (d1["consultations"], d1["people_served"]) == (2, 2)
    assert (d1["wait_p50_s"], d1["wait_p90_s"]) == (480.0, 672.0)
    assert (d1["length_p50_s"], d1["length_p90_s"]) == (900.0, 1140.0)
    assert (d1["follow_ups_due"], d1["follow_ups_kept"]) == (3, 2)
    assert (d1["reports_finalised"], d1["referrals"]) == (2, 0)
    assert (d1["appointments"], d1["no_shows"]) == (2, 1)
    # d2: v3, v4; waits 1800, 4200; lengths 360, 840.
    assert (d2["consultations"], d2["people_served"]) == (2, 2)
    assert (d2["wait_p50_s"], d2["wait_p90_s"]) == (3000.0, 3960.0)
    assert (d2["length_p50_s"], d2["length_p90_s"]) == (600.0, 792.0)
    assert d2["outcomes"] == {"referred": 1, "completed": 1}
    assert (d2["reports_finalised"], d2["referrals"]) == (2, 1)
    assert (d2["appointments"], d2["no_shows"]) == (1, 0)
    assert figures["totals"]["outcomes"] == {"completed": 3, "referred": 1, "cancelled": 1}


async def test_filters_and_weeks(records: Records) -> None:
    await write_programme(records)
    derm = await records.stats.figures(_query(service="derm"))
    assert derm["totals"]["consultations"] == 2
    assert derm["totals"]["people_served"] == 1
    assert derm["totals"]["wait_p50_s"] == 4200.0
    d1 = await records.stats.figures(_query(clinician_id="d1", group_by="service"))
    assert [g["key"] for g in d1["groups"]] == ["gp"]
    assert d1["totals"]["consultations"] == 2
    everyone = await records.stats.figures(_query())
    assert everyone["weeks"] == [
        {"week": 0, "consultations": 3, "patients": 2, "no_shows": 1},
        {"week": 1, "consultations": 2, "patients": 1, "no_shows": 0},
    ]
    counts = [b["count"] for b in everyone["wait_histogram"]]
    # 4 min, 12 min, 30 min, 70 min.
    assert counts == [1, 0, 1, 0, 1, 1, 0]


async def test_no_data_gives_empty_figures(records: Records) -> None:
    figures = await records.stats.figures(_query(group_by="clinician"))
    assert figures["totals"]["consultations"] == 0
    assert figures["totals"]["wait_p50_s"] is None
    assert figures["groups"] == []
    assert [w["consultations"] for w in figures["weeks"]] == [0, 0]


async def test_the_end_of_a_week_counts_in_that_week(records: Records) -> None:
    """A Sunday evening visit and no-show are the week's (PostgreSQL's cast to integer rounds:
    a week index computed from epoch seconds put the second half of a week into the next)."""
    patients = await write_programme(records)
    sunday = local(3, 8, 20)
    await records.visits.keep(
        Visit("v8", patients["p3"], "gp", "o1", sunday, sunday, sunday, "d1", None, "completed")
    )
    booked = await records.appointments.book(
        Booking(patients["p2"], "gp", "o1", "d1", sunday, sunday + timedelta(minutes=15), "admin"),
        local(3, 1, 9),
    )
    await records.appointments.change_status(
        booked.appointment_id, "booked", "no_show", local(3, 1, 9)
    )
    weeks = (await records.stats.figures(_query()))["weeks"]
    assert weeks == [
        {"week": 0, "consultations": 4, "patients": 3, "no_shows": 2},
        {"week": 1, "consultations": 2, "patients": 1, "no_shows": 0},
    ]
