"""Every refusal of the care record: who may not read or write what, a wrong-PIN lockout,
amendments keeping every version, counselling kept from the family unless shared, and the two
recording leaks closed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
from sqlalchemy import update

from records.tables import ShareRow
from rooms.roles import Role
from tests.conftest import RunningServer
from tests.records.test_care_flow import (
    CHILD,
    check_in,
    drafted,
    read_shared,
    register,
    report,
    visit,
)
from tests.signaling.consultation_peers import Cast
from web.keys import records_key


async def test_five_wrong_pins_lock_the_code_even_for_the_right_pin(
    cast: Cast, server: RunningServer
) -> None:
    _, doctor, ref = await drafted(cast)
    final = await doctor.ok("report.finalise", ref)
    code, pin = final["share_code"], final["share_pin"]
    wrong = "000000" if pin != "000000" else "111111"
    for _ in range(4):
        status, _ = await read_shared(server, code, wrong)
        assert status == 403
    status, body = await read_shared(server, code, wrong)
    assert status == 429 and body["error"]["code"] == "locked"
    status, _ = await read_shared(server, code, pin)
    assert status == 429, "locked for report_share_lock_s, the right PIN too"
    status, body = await read_shared(server, "ZZZZZZZZZ", pin)
    assert status == 404
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.url}/api/reports/{code}", json={"pin": 123456}) as r:
            assert r.status == 400, "strict: a number is not a PIN"


async def test_an_amendment_is_a_new_version_and_every_version_stays_readable(
    cast: Cast, server: RunningServer
) -> None:
    outlet = await cast.outlet("outlet-1")
    patient = await register(outlet)
    doctor = await cast.specialist("dr-a")
    ref = {"consultation_id": await visit(outlet, "outlet-1", patient["patient_id"], doctor)}
    assert await doctor.refused("report.finalise", ref) == "invalid_state", "no draft yet"
    await doctor.ok("report.save", {**ref, **report()})
    first = await doctor.ok("report.finalise", ref)
    assert await doctor.refused("report.save", {**ref, **report()}) == "invalid_state"
    assert await doctor.refused("report.amend", {**ref, **report()}) == "bad_request", "reason"
    amended = await doctor.ok(
        "report.amend", {**ref, **report(summary="Myopia; glasses prescribed."), "reason": "typo"}
    )
    assert amended["report"]["version"] == 2 and amended["report"]["amend_reason"] == "typo"
    assert amended["share_code"] == first["share_code"], "one code for every version"
    pushed = [p["report"]["version"] for p in outlet.pushes["report.finalised"]]
    assert pushed == [1, 2]
    v1 = (await doctor.ok("report.get", {**ref, "version": 1}))["report"]
    assert v1["summary"] == "Mild myopia in both eyes." and v1["status"] == "final"
    latest = (await outlet.ok("report.get", ref))["report"]
    assert latest["version"] == 2 and latest["summary"] == "Myopia; glasses prescribed."
    _, body = await read_shared(server, first["share_code"], first["share_pin"])
    assert body["report"]["version"] == 2


async def test_only_the_treating_clinician_writes_and_drafts_stay_private(cast: Cast) -> None:
    outlet = await cast.outlet("outlet-1")
    patient = await register(outlet)
    doctor = await cast.specialist("dr-a")
    cid = await visit(outlet, "outlet-1", patient["patient_id"], doctor)
    ref = {"consultation_id": cid}
    other = await cast.specialist("dr-other")  # covers ophthalmology, does not treat her
    assert await other.refused("report.save", {**ref, **report()}) == "forbidden"
    await doctor.ok("report.save", {**ref, **report()})
    assert await other.refused("report.get", ref) == "forbidden"
    assert await outlet.refused("report.save", {**ref, **report()}) == "forbidden"
    stranger = await cast.outlet("outlet-9")
    assert await stranger.refused("report.get", ref) in {"forbidden", "not_found"}
    bad = report(findings={"diagnosis": "myopia", "blood_pressure": "120/80"})
    assert await doctor.refused("report.save", {**ref, **bad}) == "invalid_findings"
    too_long = report(findings={"diagnosis": "x" * 201})
    assert await doctor.refused("report.save", {**ref, **too_long}) == "bad_request"


async def test_registration_and_check_in_refusals(cast: Cast) -> None:
    outlet = await cast.outlet("outlet-1")
    no_consent = {**CHILD, "record_consent": False}
    assert await outlet.refused("patient.register", no_consent) == "bad_request"
    assert await outlet.refused("patient.register", {**CHILD, "display_name": ""}) == "bad_request"
    assert (
        await outlet.refused("patient.register", {**CHILD, "birth_year": "2017"}) == "bad_request"
    )
    doctor = await cast.specialist("dr-a")
    assert await doctor.refused("patient.register", CHILD) == "forbidden"
    assert await doctor.refused("patient.lookup", {"card_code": "ABCD-EFGH"}) == "forbidden"
    patient = await register(outlet)
    code = patient["card_code"]
    typo = code[:-1] + ("0" if code[-1] != "0" else "1")
    assert await outlet.refused("patient.lookup", {"card_code": typo}) in {
        "bad_card_code",
        "unknown_card",
    }
    unknown = check_in("outlet-1", "0" * 32)
    assert await outlet.refused("consultation.check_in", unknown) == "not_found"
    nobody = {"service": "ophthalmology", "outlet_id": "outlet-1", "guardian_present": True}
    assert await outlet.refused("consultation.check_in", nobody) == "bad_request"


async def test_counselling_reaches_the_family_only_when_shared(
    cast: Cast, server: RunningServer
) -> None:
    outlet = await cast.outlet("outlet-1")
    patient = await register(outlet)
    counsellor = await cast.join(Role.COUNSELLOR, "co-1", services=("counselling",))
    cid = await visit(outlet, "outlet-1", patient["patient_id"], counsellor, "counselling")
    ref = {"consultation_id": cid}
    private = {"summary": "Anxiety about school; sessions weekly.", "advice": "Talk daily."}
    assert (
        await counsellor.refused("report.save", {**ref, "findings": {"diagnosis": "x"}, **private})
        == "invalid_findings"
    ), "counselling has no clinical findings"
    await counsellor.ok("report.save", {**ref, **private})
    final = await counsellor.ok("report.finalise", ref)
    pushed = await outlet.next("report.finalised")
    assert pushed["report"]["summary"] == "" and pushed["report"]["advice"] == ""
    _, body = await read_shared(server, final["share_code"], final["share_pin"])
    assert body["report"]["summary"] == ""
    assert (await counsellor.ok("report.get", ref))["report"]["summary"] == private["summary"]
    shared = {**private, "shared_with_family": True, "reason": "shared with the family"}
    await counsellor.ok("report.amend", {**ref, **shared})
    _, body = await read_shared(server, final["share_code"], final["share_pin"])
    assert body["report"]["summary"] == private["summary"]


async def test_recording_state_and_acknowledge_are_for_those_taking_part(cast: Cast) -> None:
    outlet = await cast.outlet("outlet-1")
    doctor = await cast.specialist("dr-a")
    checked = await outlet.ok(
        "consultation.check_in",
        {
            "service": "ophthalmology",
            "outlet_id": "outlet-1",
            "patient_ref": "T-1",
            "guardian_present": True,
        },
    )
    cid = checked["consultation_id"]
    ref = {"consultation_id": cid}
    await doctor.ok("consultation.accept", {**ref, "pick": True})
    await outlet.ok("consultation.join", ref)
    covering = await cast.specialist("dr-cover")
    assert await covering.refused("recording.state", ref) == "forbidden"
    assert await covering.refused("recording.acknowledge", ref) == "forbidden"
    invite = await doctor.ok("consultation.invite", {**ref, "guest_role": "parent"})
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{cast.server.url}/api/invites/{invite['invite_code']}/redeem", json={"name": "Mum"}
        ) as response:
            redeemed = await response.json()
    guest = await cast.with_token(redeemed["token"])
    await guest.ok("consultation.join", ref)
    assert await guest.refused("recording.acknowledge", ref) == "forbidden", "at the door"
    await doctor.ok("consultation.admit", {**ref, "guest_id": redeemed["guest_id"]})
    await guest.ok("recording.acknowledge", ref)
    await doctor.ok("consultation.end", ref)
    assert await guest.refused("recording.acknowledge", ref) in {"forbidden", "not_found"}


async def test_a_share_code_expires_after_report_share_days(
    cast: Cast, server: RunningServer
) -> None:
    _, doctor, ref = await drafted(cast)
    final = await doctor.ok("report.finalise", ref)
    expires = datetime.fromisoformat(final["expires_at"])
    days = server.settings.report_share_days
    assert abs(expires - datetime.now(UTC) - timedelta(days=days)) < timedelta(minutes=1)
    records = server.app[records_key]
    async with records.database.transaction() as session:  # the days have gone by
        await session.execute(
            update(ShareRow)
            .where(ShareRow.share_code == final["share_code"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    status, body = await read_shared(server, final["share_code"], final["share_pin"])
    assert status == 410 and body["error"]["code"] == "expired"
