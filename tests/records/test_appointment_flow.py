"""Clinic hours and appointments end to end over Socket.IO: publish hours, book (and the
refusals), list, check in with the booking (offered to the booked clinician first), and the
programme figures over HTTP."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from rooms.roles import Role
from tests.conftest import RunningServer, start_server
from tests.records.test_care_flow import CHILD
from tests.signaling.consultation_peers import Cast, Peer
from web.settings import Settings

ALL_DAY = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
SHANGHAI = ZoneInfo("Asia/Shanghai")


def next_slot(minutes_ahead: int = 30) -> datetime:
    """A 15-minute slot start at least ``minutes_ahead`` from now."""
    at = datetime.now(UTC) + timedelta(minutes=minutes_ahead)
    return at.replace(minute=at.minute - at.minute % 15, second=0, microsecond=0)


def wire(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


async def publish(doctor: Peer, **changes: Any) -> dict[str, Any]:
    payload = {"service": "ophthalmology", "weekly": ALL_DAY, **changes}
    return dict((await doctor.ok("schedule.set", payload))["schedule"])


async def book(outlet: Peer, patient_id: str, start: datetime, **extra: Any) -> dict[str, Any]:
    payload = {"patient_id": patient_id, "service": "ophthalmology", "start": wire(start), **extra}
    return dict((await outlet.ok("appointment.book", payload))["appointment"])


async def test_book_list_cancel_and_refusals(cast: Cast) -> None:
    dr_a = await cast.specialist("dr-a")
    off = (datetime.now(SHANGHAI) + timedelta(days=10)).date()
    hours = await publish(dr_a, exceptions={off.isoformat(): []})
    assert hours["slot_min"] == 15 and hours["weekly"]["mon"] == [["00:00", "24:00"]]
    assert hours["exceptions"] == {off.isoformat(): []}
    dr_b = await cast.specialist("dr-b")
    assert (
        await dr_b.refused("schedule.set", {"clinician_id": "dr-a", "service": "ophthalmology"})
        == "forbidden"
    )
    assert (
        await dr_b.refused(
            "schedule.set", {"service": "ophthalmology", "weekly": {"mon": [["10:00", "09:00"]]}}
        )
        == "invalid_schedule"
    )

    outlet = await cast.outlet("outlet-1")
    patient = (await outlet.ok("patient.register", CHILD))["patient"]
    start = next_slot()
    appointment = await book(outlet, patient["patient_id"], start, clinician_id="dr-a")
    assert set(appointment) >= {
        "appointment_id",
        "patient_id",
        "service",
        "outlet_id",
        "clinician_id",
        "start",
        "end",
        "status",
    }
    assert appointment["status"] == "booked" and appointment["outlet_id"] == "outlet-1"
    assert appointment["start"] == wire(start)
    assert appointment["end"] == wire(start + timedelta(minutes=15))

    other = await cast.outlet("outlet-2")
    other_patient = (await other.ok("patient.register", CHILD))["patient"]
    taken = {"patient_id": other_patient["patient_id"], "service": "ophthalmology"}
    assert (
        await other.refused(
            "appointment.book", {**taken, "start": wire(start), "clinician_id": "dr-a"}
        )
        == "conflict"
    )
    # Not on the slot grid, in the past, on a day off: refused.
    assert (
        await other.refused(
            "appointment.book", {**taken, "start": wire(start + timedelta(minutes=5))}
        )
        == "not_a_slot"
    )
    assert (
        await other.refused("appointment.book", {**taken, "start": wire(start - timedelta(days=1))})
        == "invalid_state"
    )
    day_off = datetime(off.year, off.month, off.day, 10, tzinfo=SHANGHAI).astimezone(UTC)
    assert (
        await other.refused("appointment.book", {**taken, "start": wire(day_off)}) == "not_a_slot"
    )
    # Another outlet may not cancel it, nor list the first outlet's bookings.
    ref = {"appointment_id": appointment["appointment_id"]}
    assert await other.refused("appointment.cancel", ref) == "forbidden"
    window = {"from": wire(start - timedelta(hours=1)), "to": wire(start + timedelta(hours=1))}
    assert (
        await other.refused("appointment.list", {"outlet_id": "outlet-1", **window}) == "forbidden"
    )
    assert (await other.ok("appointment.list", window))["appointments"] == []
    mine = (await outlet.ok("appointment.list", window))["appointments"]
    assert [a["appointment_id"] for a in mine] == [appointment["appointment_id"]]
    theirs = (await dr_a.ok("appointment.list", window))["appointments"]
    assert [a["appointment_id"] for a in theirs] == [appointment["appointment_id"]]

    # The day view: the booked slot shows the booking to its outlet and to the clinician.
    local_day = start.astimezone(SHANGHAI).date().isoformat()
    day = await outlet.ok("schedule.get", {"date": local_day, "service": "ophthalmology"})
    assert day["timezone"] == "Asia/Shanghai"
    booked_slot = next(s for s in day["slots"] if s["start"] == wire(start))
    assert booked_slot["free"] is False
    assert booked_slot["appointment"]["appointment_id"] == appointment["appointment_id"]
    day_for_other = await other.ok("schedule.get", {"date": local_day, "service": "ophthalmology"})
    slot_for_other = next(s for s in day_for_other["slots"] if s["start"] == wire(start))
    assert slot_for_other["free"] is False and slot_for_other["appointment"] is None
    own_day = await dr_a.ok("schedule.get", {"date": local_day})
    assert any(s["appointment"] for s in own_day["slots"])

    cancelled = (await outlet.ok("appointment.cancel", ref))["appointment"]
    assert cancelled["status"] == "cancelled"
    assert await outlet.refused("appointment.cancel", ref) == "invalid_state"
    # The slot is free again: the other outlet books it (without naming a clinician).
    again = await book(other, other_patient["patient_id"], start)
    assert again["clinician_id"] == "dr-a"


async def test_check_in_with_a_booking_is_offered_to_the_booked_clinician_first(
    cast: Cast,
) -> None:
    dr_a = await cast.specialist("dr-a")
    await publish(dr_a)
    dr_b = await cast.specialist("dr-b")
    # dr-b has been free longer: without a booking, it would be offered the child first.
    await dr_b.ok("presence.set", {"status": "available"})
    await dr_a.ok("presence.set", {"status": "available"})
    outlet = await cast.outlet("outlet-1")
    patient = (await outlet.ok("patient.register", CHILD))["patient"]
    appointment = await book(outlet, patient["patient_id"], next_slot(), clinician_id="dr-a")
    payload = {
        "service": "ophthalmology",
        "outlet_id": "outlet-1",
        "appointment_id": appointment["appointment_id"],
        "guardian_present": True,
    }
    checked = await outlet.ok("consultation.check_in", payload)
    consultation = checked["consultation"]
    assert consultation["appointment_id"] == appointment["appointment_id"]
    assert consultation["preferred_clinician"] == "dr-a"
    assert consultation["patient_id"] == patient["patient_id"]
    offered = await dr_a.next("consultation.offered")
    assert offered["consultation"]["id"] == checked["consultation_id"]
    assert dr_b.none_of("consultation.offered")
    assert await outlet.refused("consultation.check_in", payload) == "invalid_state"
    listed = await outlet.ok(
        "appointment.list",
        {"from": wire(next_slot(-60)), "to": wire(next_slot(24 * 60))},
    )
    assert listed["appointments"][0]["status"] == "checked_in"
    assert listed["appointments"][0]["consultation_id"] == checked["consultation_id"]


async def test_an_offline_booked_clinician_does_not_hold_the_child(cast: Cast) -> None:
    dr_a = await cast.specialist("dr-a")
    await publish(dr_a)
    await dr_a.disconnect()
    dr_b = await cast.specialist("dr-b")
    await dr_b.ok("presence.set", {"status": "available"})
    outlet = await cast.outlet("outlet-1")
    patient = (await outlet.ok("patient.register", CHILD))["patient"]
    appointment = await book(outlet, patient["patient_id"], next_slot(), clinician_id="dr-a")
    checked = await outlet.ok(
        "consultation.check_in",
        {
            "service": "ophthalmology",
            "outlet_id": "outlet-1",
            "appointment_id": appointment["appointment_id"],
            "guardian_present": True,
        },
    )
    offered = await dr_b.next("consultation.offered")
    assert offered["consultation"]["id"] == checked["consultation_id"]


async def stats_get(server: RunningServer, token: str | None, query: str) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/api/stats?{query}", headers=headers) as response:
            if response.content_type == "text/csv":
                return response.status, await response.text()
            return response.status, await response.json()


async def test_stats_route_admin_only_json_and_csv(server: RunningServer) -> None:
    admin = server.token(Role.ADMIN, "admin-1")
    status, body = await stats_get(server, admin, "from=2026-03-02&to=2026-03-15")
    assert status == 200
    assert body["timezone"] == "Asia/Shanghai" and body["totals"]["consultations"] == 0
    status, text = await stats_get(
        server, admin, "from=2026-03-02&to=2026-03-15&group_by=outlet&format=csv"
    )
    assert status == 200 and text.splitlines()[0].startswith("group,people_served,")
    assert text.splitlines()[1].startswith("total,0,0,")
    outlet = server.token(Role.OUTLET, "outlet-1")
    assert (await stats_get(server, outlet, "from=2026-03-02&to=2026-03-15"))[0] == 403
    assert (await stats_get(server, None, "from=2026-03-02&to=2026-03-15"))[0] == 401
    assert (await stats_get(server, admin, "from=2026-03-02&to=2025-03-15"))[0] == 400
    assert (await stats_get(server, admin, "from=2026-03-02&to=2026-03-15&x=1"))[0] == 400
    assert (await stats_get(server, admin, "from=yesterday&to=2026-03-15"))[0] == 400


async def test_the_booked_clinician_is_waited_for_only_within_the_grace(
    test_settings: Settings,
) -> None:
    running = await start_server(replace(test_settings, preferred_clinician_wait_s=1.5))
    people = Cast(running)
    try:
        dr_a = await people.specialist("dr-a")
        await publish(dr_a)
        # Online but away: the child waits for dr-a, then anyone covering the service takes it.
        await dr_a.ok("presence.set", {"status": "away"})
        dr_b = await people.specialist("dr-b")
        await dr_b.ok("presence.set", {"status": "available"})
        outlet = await people.outlet("outlet-1")
        patient = (await outlet.ok("patient.register", CHILD))["patient"]
        appointment = await book(outlet, patient["patient_id"], next_slot(), clinician_id="dr-a")
        checked = await outlet.ok(
            "consultation.check_in",
            {
                "service": "ophthalmology",
                "outlet_id": "outlet-1",
                "appointment_id": appointment["appointment_id"],
                "guardian_present": True,
            },
        )
        await asyncio.sleep(0.8)
        assert dr_b.none_of("consultation.offered")
        offered = await dr_b.next("consultation.offered", within_s=5)
        assert offered["consultation"]["id"] == checked["consultation_id"]
    finally:
        await people.close()
        await running.runner.cleanup()
