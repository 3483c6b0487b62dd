"""Every authorization refusal of the consultation events, proven against a running server."""

from __future__ import annotations

import aiohttp

from rooms.roles import Role
from tests.conftest import RunningServer
from tests.signaling.consultation_peers import Cast, check_in_payload


async def test_outlet_sees_only_its_own_consultations(cast: Cast) -> None:
    mine = await cast.outlet("outlet-a")
    theirs = await cast.outlet("outlet-b")
    cid = (await mine.ok("consultation.check_in", check_in_payload("outlet-a")))["consultation_id"]
    assert (
        await theirs.refused("consultation.check_in", check_in_payload("outlet-a")) == "forbidden"
    )
    for event in (
        "consultation.join",
        "consultation.cancel",
        "consultation.end",
        "consultation.invite",
    ):
        assert await theirs.refused(event, {"consultation_id": cid}) == "forbidden", event
    consent = {"consultation_id": cid, "given": True}
    assert await theirs.refused("consultation.consent", consent) == "forbidden"
    for event in ("queue.list", "presence.set", "consultation.accept", "admin.overview"):
        assert await mine.refused(event, {}) in {"forbidden", "bad_request"}, event
    assert await mine.refused("queue.list", {}) == "forbidden"
    assert theirs.none_of("queue.position", lambda p: p["consultation_id"] == cid)


async def test_specialist_sees_only_covered_services(cast: Cast) -> None:
    outlet = await cast.outlet("outlet-a")
    cid = (await outlet.ok("consultation.check_in", check_in_payload("outlet-a", "paediatrics")))[
        "consultation_id"
    ]
    eye = await cast.specialist("dr-eye", "ophthalmology")
    assert await eye.refused("queue.list", {"service": "paediatrics"}) == "forbidden"
    assert (await eye.ok("queue.list", {}))["entries"] == []
    assert (
        await eye.refused("consultation.accept", {"consultation_id": cid, "pick": True})
        == "forbidden"
    )
    assert (
        await eye.refused("presence.set", {"status": "available", "services": ["paediatrics"]})
        == "forbidden"
    )
    kids = await cast.specialist("dr-kids", "paediatrics")
    await kids.ok("consultation.accept", {"consultation_id": cid, "pick": True})
    other = await cast.specialist("dr-kids-2", "paediatrics")
    for event, extra in (
        ("consultation.join", {}),
        ("consultation.end", {}),
        ("consultation.invite", {}),
        ("consultation.notes", {"notes": "x"}),
        ("consultation.admit", {"guest_id": "guest-x"}),
        ("consultation.transfer", {"service": "counselling"}),
    ):
        code = await other.refused(event, {"consultation_id": cid, **extra})
        assert code == "forbidden", (event, code)
    assert await other.refused("consultation.decline", {"consultation_id": cid}) == "conflict"


async def test_guest_sees_only_its_one_consultation(cast: Cast, server: RunningServer) -> None:
    outlet = await cast.outlet("outlet-a")
    first = (await outlet.ok("consultation.check_in", check_in_payload("outlet-a")))[
        "consultation_id"
    ]
    second = (await outlet.ok("consultation.check_in", check_in_payload("outlet-a")))[
        "consultation_id"
    ]
    dr = await cast.specialist("dr-a")
    await dr.ok("consultation.accept", {"consultation_id": first, "pick": True})
    invite = await dr.ok("consultation.invite", {"consultation_id": first})
    async with aiohttp.ClientSession() as http:
        url = f"{server.url}/api/invites/{invite['invite_code']}/redeem"
        async with http.post(url, json={"name": "Dad"}) as response:
            grant = await response.json()
    guest = await cast.with_token(grant["token"])
    assert await guest.refused("consultation.join", {"consultation_id": second}) == "forbidden"
    for event in (
        "consultation.invite",
        "consultation.end",
        "consultation.check_in",
        "queue.list",
        "audit.list",
        "consultation.admit",
    ):
        assert await guest.refused(event, {"consultation_id": first}) in {"forbidden"}, event
    # A guest token for the right consultation that was never redeemed is no participant.
    stranger = await cast.join(Role.GUEST, "guest-forged-subject", consultation_id=first)
    assert await stranger.refused("consultation.join", {"consultation_id": first}) == "forbidden"


async def test_only_admins_read_audit_and_overview(cast: Cast) -> None:
    outlet = await cast.outlet("outlet-a")
    cid = (await outlet.ok("consultation.check_in", check_in_payload("outlet-a")))[
        "consultation_id"
    ]
    dr = await cast.specialist("dr-a")
    for peer in (outlet, dr):
        assert await peer.refused("audit.list", {"consultation_id": cid}) == "forbidden"
        assert await peer.refused("admin.overview", {}) == "forbidden"
    admin = await cast.join(Role.ADMIN, "admin-1")
    assert (await admin.ok("audit.list", {"consultation_id": cid}))["events"][0][
        "action"
    ] == "check_in"
    assert await admin.refused("audit.list", {"consultation_id": "c-unknown"}) == "not_found"
    overview = await admin.ok("admin.overview", {})
    assert [e["consultation_id"] for e in overview["queues"]["ophthalmology"]] == [cid]


async def test_bad_payloads_get_clear_errors_and_the_connection_survives(cast: Cast) -> None:
    outlet = await cast.outlet("outlet-a")
    bad = [
        {
            "service": "ophthalmology",
            "outlet_id": "outlet-a",
            "patient_ref": "Jane Doe",
            "guardian_present": True,
        },
        {**check_in_payload("outlet-a"), "name": "Jane"},
        {**check_in_payload("outlet-a"), "appointment_at": "2026-11-23T10:00:00"},
        {**check_in_payload("outlet-a"), "service": "X" * 100},
        {"service": "ophthalmology"},
    ]
    for payload in bad:
        assert await outlet.refused("consultation.check_in", payload) == "bad_request", payload
    assert await outlet.refused("consultation.join", {"consultation_id": "c-nope"}) == "not_found"
    ok = await outlet.ok(
        "consultation.check_in", check_in_payload("outlet-a", appointment_at="2026-11-23T10:00:00Z")
    )
    assert ok["consultation"]["appointment_at"] == "2026-11-23T10:00:00Z"
