"""Whole consultation flows over Socket.IO against a running server, on both stores."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from rooms.roles import Role
from tests.conftest import RunningServer, start_server
from tests.signaling.conftest import on_store
from tests.signaling.consultation_peers import Cast, check_in_payload
from web.keys import settings_key
from web.settings import Settings


@pytest.fixture(params=["memory", "redis"])
async def app_settings(request: pytest.FixtureRequest, test_settings: Settings) -> Settings:
    return await on_store(request, test_settings, request.param)


@pytest.fixture
async def running(app_settings: Settings) -> AsyncIterator[RunningServer]:
    server = await start_server(app_settings)
    yield server
    await server.runner.cleanup()


async def test_fair_pairing_accept_and_end(cast: Cast) -> None:
    outlets = [await cast.outlet(f"outlet-{i}") for i in range(3)]
    first = await outlets[0].ok("consultation.check_in", check_in_payload("outlet-0"))
    second = await outlets[1].ok("consultation.check_in", check_in_payload("outlet-1"))
    urgent = await outlets[2].ok("consultation.check_in", check_in_payload("outlet-2", urgent=True))
    assert (first["position"], second["position"]) == (1, 2)
    assert urgent["position"] == 1, "an urgent request goes ahead"
    assert first["estimated_wait_s"] is None, "nobody online: no honest estimate"
    await outlets[0].next("queue.position", lambda p: p["position"] == 2)

    dr_a = await cast.specialist("dr-a")
    dr_b = await cast.specialist("dr-b")
    await dr_a.ok("presence.set", {"status": "available"})
    offer = await dr_a.next("consultation.offered")
    assert offer["consultation"]["id"] == urgent["consultation_id"]
    accepted = await dr_a.ok("consultation.accept", {"consultation_id": urgent["consultation_id"]})
    assert accepted["consultation"]["state"] == "active"
    update = await outlets[2].next(
        "consultation.updated", lambda p: p["consultation"]["state"] == "active"
    )
    assert update["consultation"]["clinician_id"] == "dr-a"

    await dr_b.ok("presence.set", {"status": "available"})
    offer_b = await dr_b.next("consultation.offered")
    assert offer_b["consultation"]["id"] == first["consultation_id"], "then the longest waiting"
    await outlets[0].next(
        "queue.position", lambda p: p["state"] == "offered" and p["position"] == 1
    )

    joined = await outlets[2].ok(
        "consultation.join", {"consultation_id": urgent["consultation_id"]}
    )
    assert joined["admitted"] is True
    ended = await outlets[2].ok("consultation.end", {"consultation_id": urgent["consultation_id"]})
    assert ended["consultation"]["state"] == "ended"
    push = await dr_a.next("consultation.ended")
    assert push == {
        "consultation_id": urgent["consultation_id"],
        "reason": "completed",
        "consultation": push["consultation"],
    }
    # dr-a is free again and the remaining request goes to it.
    offer_again = await dr_a.next("consultation.offered")
    assert offer_again["consultation"]["id"] == second["consultation_id"]


async def test_decline_and_timeout_requeue_keeping_place(cast: Cast) -> None:
    outlet = await cast.outlet("outlet-1")
    later = await cast.outlet("outlet-2")
    first = await outlet.ok("consultation.check_in", check_in_payload("outlet-1"))
    await later.ok("consultation.check_in", check_in_payload("outlet-2"))
    cid = first["consultation_id"]
    dr_a = await cast.specialist("dr-a")
    await dr_a.ok("presence.set", {"status": "available"})
    assert (await dr_a.next("consultation.offered"))["consultation"]["id"] == cid
    await dr_a.ok("consultation.decline", {"consultation_id": cid})
    # Declined: dr-a now gets the other request, never this one again.
    assert (await dr_a.next("consultation.offered"))["consultation"]["id"] != cid

    dr_b = await cast.specialist("dr-b")
    await dr_b.ok("presence.set", {"status": "available"})
    assert (await dr_b.next("consultation.offered"))["consultation"]["id"] == cid
    withdrawn = await dr_b.next("consultation.offer_withdrawn")  # not answered within 2 s
    assert withdrawn == {"consultation_id": cid, "reason": "timeout"}
    position = await outlet.next(
        "queue.position", lambda p: p["state"] == "waiting" and p["position"] == 1
    )
    assert position["consultation_id"] == cid, "the request kept the head of the queue"
    assert await dr_b.refused("consultation.accept", {"consultation_id": cid}) == "conflict"
    overview_clinicians = {
        c["clinician_id"]: c["status"]
        for c in (await (await cast.join(Role.ADMIN, "admin-1")).ok("admin.overview"))["clinicians"]
    }
    assert overview_clinicians["dr-b"] == "away", "a lapsed offer sets the clinician away"

    dr_c = await cast.specialist("dr-c")
    await dr_c.ok("presence.set", {"status": "available"})
    assert (await dr_c.next("consultation.offered"))["consultation"]["id"] == cid


async def test_pick_from_queue_list_and_concurrent_pick_has_one_winner(cast: Cast) -> None:
    outlets = [await cast.outlet(f"outlet-{i}") for i in range(4)]
    ids = [
        (await o.ok("consultation.check_in", check_in_payload(f"outlet-{i}")))["consultation_id"]
        for i, o in enumerate(outlets)
    ]
    doctors = [await cast.specialist(f"dr-{i}") for i in range(3)]
    listing = await doctors[0].ok("queue.list", {})
    assert [e["consultation_id"] for e in listing["entries"]] == ids
    assert [e["position"] for e in listing["entries"]] == [1, 2, 3, 4]
    for cid in ids:
        acks = await asyncio.gather(
            *(
                d.call("consultation.accept", {"consultation_id": cid, "pick": True})
                for d in doctors
            )
        )
        winners = [a for a in acks if "ok" in a]
        assert len(winners) == 1, acks
        assert sorted(a["error"]["code"] for a in acks if "error" in a) == ["conflict", "conflict"]
        assert winners[0]["ok"]["consultation"]["state"] == "active"


async def test_reconnection_within_and_after_grace(cast: Cast, running: RunningServer) -> None:
    outlet = await cast.outlet("outlet-1")
    other = await cast.outlet("outlet-2")
    mine = (await outlet.ok("consultation.check_in", check_in_payload("outlet-1")))[
        "consultation_id"
    ]
    await other.ok("consultation.check_in", check_in_payload("outlet-2"))
    await outlet.disconnect()
    await asyncio.sleep(0.5)
    back = await cast.outlet("outlet-1")
    ready = back.pushes["session.ready"][0]
    assert ready["resume"]["consultation"]["id"] == mine
    assert ready["resume"]["consultation"]["participants"][0]["connected"] is True
    await back.next("queue.position", lambda p: p["consultation_id"] == mine and p["position"] == 1)

    await back.disconnect()
    await asyncio.sleep(2.0 + 1.2)  # rejoin grace is 2 s in tests
    late = await cast.outlet("outlet-1")
    assert late.pushes["session.ready"][0]["resume"] is None
    assert await late.refused("consultation.join", {"consultation_id": mine}) == "invalid_state"
    entry = await other.next("queue.position", lambda p: p["position"] == 1)
    assert entry["outlet_id"] == "outlet-2", "the abandoned request left the queue"


async def test_active_participant_rejoins_within_grace_and_is_removed_after(cast: Cast) -> None:
    outlet = await cast.outlet("outlet-1")
    cid = (await outlet.ok("consultation.check_in", check_in_payload("outlet-1")))[
        "consultation_id"
    ]
    dr = await cast.specialist("dr-a")
    await dr.ok("consultation.accept", {"consultation_id": cid, "pick": True})
    await outlet.ok("consultation.join", {"consultation_id": cid})
    await dr.disconnect()
    dropped = await outlet.next(
        "consultation.updated",
        lambda p: any(
            x["participant_id"] == "dr-a" and not x["connected"]
            for x in p["consultation"]["participants"]
        ),
    )
    assert dropped["consultation"]["state"] == "active"
    dr_back = await cast.specialist("dr-a")
    ready = dr_back.pushes["session.ready"][0]
    assert ready["resume"]["consultation"]["id"] == cid and ready["rejoin_grace_s"] == 2.0
    await dr_back.ok("consultation.join", {"consultation_id": cid})
    await outlet.next(
        "consultation.updated",
        lambda p: any(
            x["participant_id"] == "dr-a" and x["connected"]
            for x in p["consultation"]["participants"]
        ),
    )

    await outlet.disconnect()
    gone = await dr_back.next(
        "consultation.updated",
        lambda p: all(x["participant_id"] != "outlet-1" for x in p["consultation"]["participants"]),
        within_s=5,
    )
    assert gone["consultation"]["state"] == "active"


async def test_invite_redeem_wait_admit_and_refuse(cast: Cast, running: RunningServer) -> None:
    outlet = await cast.outlet("outlet-1")
    cid = (await outlet.ok("consultation.check_in", check_in_payload("outlet-1")))[
        "consultation_id"
    ]
    dr = await cast.specialist("dr-a")
    await dr.ok("consultation.accept", {"consultation_id": cid, "pick": True})
    invite = await dr.ok("consultation.invite", {"consultation_id": cid, "guest_role": "parent"})
    assert invite["url"] == f"/join/{invite['invite_code']}" and invite["expires_at"].endswith("Z")
    by_outlet = await outlet.ok(
        "consultation.invite", {"consultation_id": cid, "guest_role": "interpreter", "ttl_s": 120}
    )

    async with aiohttp.ClientSession() as http:
        redeem = f"{running.url}/api/invites/{invite['invite_code']}/redeem"
        async with http.post(redeem, json={"name": "Mum"}) as response:
            assert response.status == 200
            guest_grant = await response.json()
        async with http.post(redeem, json={"name": "Someone else"}) as response:
            assert response.status == 409, "an invite is single-use"
        async with http.post(
            f"{running.url}/api/invites/nope/redeem", json={"name": "x"}
        ) as response:
            assert response.status == 404
        async with http.post(redeem, json={"name": "x", "extra": 1}) as response:
            assert response.status == 400
        second = f"{running.url}/api/invites/{by_outlet['invite_code']}/redeem"
        async with http.post(second, json={"name": "Interpreter"}) as response:
            interpreter_grant = await response.json()
    assert guest_grant["consultation_id"] == cid and guest_grant["guest_id"].startswith("guest-")

    guest = await cast.with_token(guest_grant["token"])
    at_door = await guest.ok("consultation.join", {"consultation_id": cid})
    assert at_door["admitted"] is False
    waiting = await dr.next("consultation.guest_waiting")
    assert waiting["guest"]["participant_id"] == guest_grant["guest_id"]
    await dr.ok("consultation.admit", {"consultation_id": cid, "guest_id": guest_grant["guest_id"]})
    admitted = await guest.next("consultation.admitted")
    assert admitted["consultation"]["id"] == cid
    assert (await guest.ok("consultation.join", {"consultation_id": cid}))["admitted"] is True

    interpreter = await cast.with_token(interpreter_grant["token"])
    await interpreter.ok("consultation.join", {"consultation_id": cid})
    await dr.next("consultation.guest_waiting")
    await dr.ok(
        "consultation.admit",
        {"consultation_id": cid, "guest_id": interpreter_grant["guest_id"], "admit": False},
    )
    assert (await interpreter.next("consultation.refused")) == {"consultation_id": cid}
    assert await interpreter.refused("consultation.join", {"consultation_id": cid}) == "forbidden"


async def test_transfer_goes_to_front_of_the_other_queue(cast: Cast) -> None:
    waiting_outlet = await cast.outlet("outlet-w")
    await waiting_outlet.ok("consultation.check_in", check_in_payload("outlet-w", "counselling"))
    outlet = await cast.outlet("outlet-1")
    cid = (await outlet.ok("consultation.check_in", check_in_payload("outlet-1")))[
        "consultation_id"
    ]
    dr = await cast.specialist("dr-a")
    await dr.ok("consultation.accept", {"consultation_id": cid, "pick": True})
    moved = await dr.ok("consultation.transfer", {"consultation_id": cid, "service": "counselling"})
    assert (
        moved["consultation"]["state"] == "waiting"
        and moved["consultation"]["service"] == "counselling"
    )
    counsellor = await cast.join(Role.COUNSELLOR, "co-1", services=["counselling"])
    listing = await counsellor.ok("queue.list", {})
    assert listing["entries"][0]["consultation_id"] == cid, "a transfer goes to the front"
    await counsellor.ok("presence.set", {"status": "available"})
    assert (await counsellor.next("consultation.offered"))["consultation"]["id"] == cid
    assert await dr.refused("consultation.join", {"consultation_id": cid}) == "forbidden"

    # Hand-over to a named colleague: offered to that colleague directly.
    await counsellor.ok("consultation.accept", {"consultation_id": cid})
    colleague = await cast.join(Role.COUNSELLOR, "co-2", services=["counselling"])
    await counsellor.ok("consultation.transfer", {"consultation_id": cid, "clinician_id": "co-2"})
    offer = await colleague.next("consultation.offered")
    assert offer["consultation"]["id"] == cid
    await colleague.ok("consultation.accept", {"consultation_id": cid})


async def test_empty_room_ends_after_grace(cast: Cast) -> None:
    outlet = await cast.outlet("outlet-1")
    cid = (await outlet.ok("consultation.check_in", check_in_payload("outlet-1")))[
        "consultation_id"
    ]
    dr = await cast.specialist("dr-a")
    await dr.ok("consultation.accept", {"consultation_id": cid, "pick": True})
    await outlet.ok("consultation.join", {"consultation_id": cid})
    await outlet.ok("consultation.leave", {"consultation_id": cid})
    await dr.ok("consultation.leave", {"consultation_id": cid})
    ended = await outlet.next("consultation.ended", within_s=5)
    assert ended["reason"] == "empty"


async def test_audit_log_records_the_flow_for_admins_only(cast: Cast) -> None:
    outlet = await cast.outlet("outlet-1")
    cid = (await outlet.ok("consultation.check_in", check_in_payload("outlet-1")))[
        "consultation_id"
    ]
    dr = await cast.specialist("dr-a")
    await dr.ok("presence.set", {"status": "available"})
    await dr.next("consultation.offered")
    await dr.ok("consultation.accept", {"consultation_id": cid})
    await outlet.ok("consultation.join", {"consultation_id": cid})
    await dr.ok("consultation.consent", {"consultation_id": cid, "given": True})
    await dr.ok("consultation.notes", {"consultation_id": cid, "notes": "visual acuity 6/9"})
    await dr.ok("consultation.invite", {"consultation_id": cid})
    await dr.ok("consultation.end", {"consultation_id": cid, "reason": "completed"})
    admin = await cast.join(Role.ADMIN, "admin-1")
    events = (await admin.ok("audit.list", {"consultation_id": cid}))["events"]
    actions = [e["action"] for e in events]
    # With a Redis store the server is a node of a cluster: the accept pins the media to a node.
    clustered = cast.server.app[settings_key].store_backend == "redis"
    assert actions == [
        "check_in",
        "offer",
        "accept",
        *(["media_pinned"] if clustered else []),
        "join",
        "consent",
        "notes",
        "invite",
        "end",
    ]
    assert events[0]["actor"] == "outlet-1" and events[0]["role"] == "outlet"
    assert events[2]["actor"] == "dr-a" and events[2]["role"] == "specialist"
    assert all(e["at"].endswith("Z") for e in events)
    assert "6/9" not in str(events), "notes never reach the audit log"
    assert await dr.refused("audit.list", {"consultation_id": cid}) == "forbidden"
    assert await outlet.refused("audit.list", {"consultation_id": cid}) == "forbidden"


async def test_clinician_going_offline_is_noticed_and_its_offer_moves_on(cast: Cast) -> None:
    outlet = await cast.outlet("outlet-1")
    cid = await outlet.ok("consultation.check_in", check_in_payload("outlet-1"))
    dr_a = await cast.specialist("dr-a")
    await dr_a.ok("presence.set", {"status": "available"})
    assert (await dr_a.next("consultation.offered"))["consultation"]["id"] == cid["consultation_id"]
    dr_b = await cast.specialist("dr-b")
    await dr_b.ok("presence.set", {"status": "available"})
    await dr_a.disconnect()
    offer = await dr_b.next("consultation.offered", within_s=2)
    assert offer["consultation"]["id"] == cid["consultation_id"]
    admin = await cast.join(Role.ADMIN, "admin-1")
    statuses = {
        c["clinician_id"]: c["status"] for c in (await admin.ok("admin.overview"))["clinicians"]
    }
    assert statuses == {"dr-a": "offline", "dr-b": "available"}
