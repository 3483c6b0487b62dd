"""The care record end to end over Socket.IO and HTTP: a child registered once, two visits with
two specialists, a report the family reads with its PIN, and every refusal on the way."""

from __future__ import annotations

from typing import Any

import aiohttp

from records.consents import ConsentKind
from rooms.roles import Role
from tests.conftest import RunningServer
from tests.signaling.consultation_peers import Cast, Peer
from web.keys import records_key

CHILD = {
    "display_name": "Wang Mei",
    "birth_year": 2017,
    "sex": "female",
    "guardian_name": "Wang Li",
    "guardian_phone": "+86 138 0000 1111",
    "record_consent": True,
}
FINDINGS = {
    "visual_acuity_right": "0.6",
    "visual_acuity_left": "0.8",
    "refraction_right": "-1.25 DS",
    "refraction_left": "-0.75 DS",
    "diagnosis": "myopia",
}


def report(**changes: Any) -> dict[str, Any]:
    return {
        "findings": FINDINGS,
        "summary": "Mild myopia in both eyes.",
        "advice": "Glasses for the blackboard; outdoor play two hours a day.",
        "follow_up_days": 180,
        **changes,
    }


async def register(outlet: Peer) -> dict[str, Any]:
    patient: dict[str, Any] = (await outlet.ok("patient.register", CHILD))["patient"]
    return patient


def check_in(outlet_id: str, patient_id: str, service: str = "ophthalmology") -> dict[str, Any]:
    return {
        "service": service,
        "outlet_id": outlet_id,
        "patient_id": patient_id,
        "guardian_present": True,
    }


async def visit(
    outlet: Peer, outlet_id: str, patient_id: str, doctor: Peer, service: str = "ophthalmology"
) -> str:
    """Check the patient in at ``outlet`` and let ``doctor`` take it; returns the consultation."""
    checked = await outlet.ok("consultation.check_in", check_in(outlet_id, patient_id, service))
    cid = str(checked["consultation_id"])
    await doctor.ok("consultation.accept", {"consultation_id": cid, "pick": True})
    await outlet.ok("consultation.join", {"consultation_id": cid})
    return cid


async def drafted(cast: Cast) -> tuple[Peer, Peer, dict[str, str]]:
    """A registered child seen by dr-a at outlet-1, with a draft report: outlet, doctor, ref."""
    outlet = await cast.outlet("outlet-1")
    patient = await register(outlet)
    doctor = await cast.specialist("dr-a")
    ref = {"consultation_id": await visit(outlet, "outlet-1", patient["patient_id"], doctor)}
    await doctor.ok("report.save", {**ref, **report()})
    return outlet, doctor, ref


async def read_shared(server: RunningServer, code: str, pin: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.url}/api/reports/{code}", json={"pin": pin}) as response:
            return response.status, await response.json()


async def test_two_visits_of_one_child_reach_the_family_and_the_next_specialist(
    cast: Cast, server: RunningServer
) -> None:
    outlet = await cast.outlet("outlet-1")
    patient = await register(outlet)
    assert patient["display_name"] == "Wang Mei" and patient["registered_outlet"] == "outlet-1"
    assert "guardian_phone" not in patient  # the card carries what the kiosk prints, no more
    records = server.app[records_key]
    (consent,) = await records.consents.of_patient(patient["patient_id"])
    assert (consent.kind, consent.given_by, consent.purpose) == (
        ConsentKind.RECORD,
        "outlet-1",
        "keep_patient_record",
    )

    dr_a = await cast.specialist("dr-a")
    first = await visit(outlet, "outlet-1", patient["patient_id"], dr_a)
    ref = {"consultation_id": first}
    await outlet.ok("consultation.consent", {**ref, "given": True})
    await outlet.ok("consultation.consent", {**ref, "given": False})
    (given,) = await records.consents.of_consultation(first)
    assert given.kind is ConsentKind.RECORDING and given.patient_id == patient["patient_id"]
    assert given.withdrawn_at is not None and given.withdrawn_by == "outlet-1"
    draft = (await dr_a.ok("report.save", {**ref, **report()}))["report"]
    assert draft["status"] == "draft" and draft["version"] == 1
    assert (await outlet.ok("report.get", ref))["report"] is None, "drafts are the clinician's"
    final = await dr_a.ok("report.finalise", ref)
    assert final["report"]["status"] == "final" and final["report"]["clinician_name"] == "dr-a"
    pushed = await outlet.next("report.finalised")
    assert pushed["share_code"] == final["share_code"] and pushed["share_pin"] == final["share_pin"]
    assert pushed["report"]["findings"] == FINDINGS
    got = await outlet.ok("report.get", ref)  # the kiosk's ended screen reads it again
    assert got["report"]["version"] == 1 and got["share_pin"] == final["share_pin"]
    await dr_a.ok("consultation.end", ref)

    wrong = "000000" if final["share_pin"] != "000000" else "111111"
    status, body = await read_shared(server, final["share_code"], wrong)
    assert status == 403 and body["error"]["code"] == "forbidden"
    status, body = await read_shared(server, final["share_code"], final["share_pin"])
    assert status == 200 and body["report"]["summary"] == "Mild myopia in both eyes."

    # The second visit: another outlet finds the child by the card code as typed by hand.
    other_outlet = await cast.outlet("outlet-2")
    typed = patient["card_code"].lower().replace("-", " ")
    found = (await other_outlet.ok("patient.lookup", {"card_code": typed}))["patient"]
    assert found["patient_id"] == patient["patient_id"]
    dr_b = await cast.specialist("dr-b")
    dr_c = await cast.specialist("dr-c")  # covers the service, treats nobody here
    checked = await other_outlet.ok(
        "consultation.check_in", check_in("outlet-2", patient["patient_id"])
    )
    second = checked["consultation_id"]
    history_ref = {"patient_id": patient["patient_id"]}
    assert await dr_b.refused("patient.history", history_ref) == "forbidden", "not offered yet"
    await dr_b.ok("presence.set", {"status": "available"})
    await dr_b.next("consultation.offered", lambda p: p["consultation"]["id"] == second)
    history = await dr_b.ok("patient.history", history_ref)
    card = {"card_code": patient["card_code"]}
    assert (await dr_b.ok("patient.lookup", card))["patient"]["patient_id"] == found["patient_id"]
    assert await dr_c.refused("patient.lookup", card) == "forbidden", "covers, does not treat"
    visits = history["visits"]
    assert [v["consultation_id"] for v in visits] == [second, first], "newest first"
    assert visits[1]["clinician_name"] == "dr-a" and visits[1]["report"]["findings"] == FINDINGS
    assert visits[1]["outlet_id"] == "outlet-1" and visits[1]["ended_at"] is not None
    assert visits[0]["report"] is None
    assert await dr_c.refused("patient.history", history_ref) == "forbidden"
    assert await other_outlet.refused("patient.history", history_ref) == "forbidden"
    admin = await cast.join(Role.ADMIN, "admin-1")
    assert len((await admin.ok("patient.history", history_ref))["visits"]) == 2

    audit = await admin.ok("audit.list", {"consultation_id": first, "limit": 200})
    actions = [e["action"] for e in audit["events"]]
    for expected in ("report_saved", "report_finalised", "report_read", "report_share_read"):
        assert expected in actions, expected
