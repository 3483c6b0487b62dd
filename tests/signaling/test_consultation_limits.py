"""Domain limits over Socket.IO, with the abuse cases' own numbers as regressions.

1,500 check-ins from one kiosk, 5,000 invites on one consultation, 10,000 consent calls and an
outlet reconnecting with 781 open consultations: each is refused (or absorbed) cleanly at its
limit, the refusal is a clear error code to that client only and a metric, and what the server
pushes or stores stays bounded.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import fields, replace
from typing import Any

import aiohttp
import pytest

from rooms.models import Consultation, Participant
from rooms.roles import Role
from tests.conftest import RunningServer, start_server
from tests.signaling.conftest import on_store
from tests.signaling.consultation_peers import Cast, Peer, check_in_payload
from web.keys import registry_key, store_key
from web.settings import Settings

QUEUE_PUSH_ENTRIES = 5
# Far more than one queue.changed summary of QUEUE_PUSH_ENTRIES entries can take.
PUSH_BYTES_BOUND = 4096


def without_event_rate_limit(settings: Settings) -> dict[str, Any]:
    """These tests send thousands of events on one connection on purpose: the per-connection
    event rate limit (tested on its own) must not be what refuses them here."""
    names = {f.name for f in fields(settings)}
    wanted = {"events_per_s": 1_000_000.0, "event_burst": 1_000_000}
    return {k: v for k, v in wanted.items() if k in names}


@pytest.fixture(params=["memory", "redis"])
async def limit_settings(request: pytest.FixtureRequest, test_settings: Settings) -> Settings:
    settings = replace(
        test_settings,
        queue_push_entries=QUEUE_PUSH_ENTRIES,
        **without_event_rate_limit(test_settings),
    )
    return await on_store(request, settings, request.param)


@pytest.fixture
async def running(limit_settings: Settings) -> AsyncIterator[RunningServer]:
    server = await start_server(limit_settings)
    yield server
    await server.runner.cleanup()


def refusals(server: RunningServer, limit: str) -> float:
    value = server.app[registry_key].get_sample_value(
        "teleconsult_limit_refusals_total", {"limit": limit}
    )
    return float(value or 0.0)


async def active(cast: Cast, outlet_id: str = "outlet-1") -> tuple[str, Peer, Peer]:
    outlet = await cast.outlet(outlet_id)
    cid = (await outlet.ok("consultation.check_in", check_in_payload(outlet_id)))["consultation_id"]
    doctor = await cast.specialist("dr-1")
    await doctor.ok("consultation.accept", {"consultation_id": cid, "pick": True})
    await outlet.ok("consultation.join", {"consultation_id": cid})
    return cid, outlet, doctor


async def test_1500_check_ins_from_one_outlet_are_refused_past_the_limit(
    cast: Cast, running: RunningServer
) -> None:
    limit = running.settings.max_open_consultations_per_outlet
    doctor = await cast.specialist("dr-watch")
    outlet = await cast.outlet("outlet-1")
    other = await cast.outlet("outlet-2")
    outcomes: dict[str, int] = {}
    for _ in range(1500):
        ack = await outlet.call("consultation.check_in", check_in_payload("outlet-1"))
        code = "ok" if "ok" in ack else ack["error"]["code"]
        outcomes[code] = outcomes.get(code, 0) + 1
    assert outcomes == {"ok": limit, "too_many_open_consultations": 1500 - limit}
    assert refusals(running, "open_consultations_per_outlet") == 1500 - limit
    # Only that outlet is limited, and it may check in again once one of its own has ended.
    await other.ok("consultation.check_in", check_in_payload("outlet-2"))
    queue = await doctor.ok("queue.list", {})
    mine = [e["consultation_id"] for e in queue["entries"] if e["outlet_id"] == "outlet-1"]
    await outlet.ok("consultation.cancel", {"consultation_id": mine[0]})
    await outlet.ok("consultation.check_in", check_in_payload("outlet-1"))

    await doctor.next("queue.changed", lambda p: p["total"] == limit + 1)
    pushes = doctor.pushes["queue.changed"]
    assert pushes, "the clinician heard about the queue"
    for push in pushes:
        assert len(json.dumps(push)) < PUSH_BYTES_BOUND
        assert len(push["entries"]) <= QUEUE_PUSH_ENTRIES
        assert push["truncated"] == (push["total"] > QUEUE_PUSH_ENTRIES)
        assert push["counts"]["waiting"] + push["counts"]["offered"] == push["total"]
    async with aiohttp.ClientSession() as http, http.get(f"{running.url}/healthz") as response:
        assert response.status == 200


async def test_5000_invites_on_one_consultation_are_refused_past_the_limit(
    cast: Cast, running: RunningServer
) -> None:
    limit = running.settings.max_invites_per_consultation
    cid, outlet, doctor = await active(cast)
    codes: dict[str, int] = {}
    for n in range(5000):
        sender = doctor if n % 2 else outlet
        ack = await sender.call("consultation.invite", {"consultation_id": cid})
        code = "ok" if "ok" in ack else ack["error"]["code"]
        codes[code] = codes.get(code, 0) + 1
    assert codes == {"ok": limit, "too_many_invites": 5000 - limit}
    assert refusals(running, "invites_per_consultation") == 5000 - limit


async def test_a_redeemed_invite_frees_its_place(cast: Cast, running: RunningServer) -> None:
    limit = running.settings.max_invites_per_consultation
    cid, _, doctor = await active(cast)
    invites = [
        await doctor.ok("consultation.invite", {"consultation_id": cid}) for _ in range(limit)
    ]
    assert await doctor.refused("consultation.invite", {"consultation_id": cid}) == (
        "too_many_invites"
    )
    async with aiohttp.ClientSession() as http:
        redeem = f"{running.url}/api/invites/{invites[0]['invite_code']}/redeem"
        async with http.post(redeem, json={"name": "Parent"}) as response:
            assert response.status == 200
    await doctor.ok("consultation.invite", {"consultation_id": cid})


async def test_10000_consent_calls_keep_the_audit_bounded(
    cast: Cast, running: RunningServer
) -> None:
    cap = running.settings.max_audit_entries_per_action
    cid, outlet, _ = await active(cast)
    admin = await cast.join(Role.ADMIN, "admin-1")
    codes: dict[str, int] = {}
    for n in range(10_000):
        given = n % 40 != 39  # mostly the same consent again, now and then withdrawn
        ack = await outlet.call("consultation.consent", {"consultation_id": cid, "given": given})
        code = "ok" if "ok" in ack else ack["error"]["code"]
        codes[code] = codes.get(code, 0) + 1
    # 250 withdrawals interleave 250 runs of identical consents: each action reaches its cap.
    assert codes["too_many_repeats"] > 0 and codes["ok"] + codes["too_many_repeats"] == 10_000
    assert refusals(running, "audit_entries_per_action") == codes["too_many_repeats"]

    events: list[dict[str, Any]] = []
    cursor: int | None = 0
    pages = 0
    while cursor is not None:
        page = await admin.ok(
            "audit.list", {"consultation_id": cid, "cursor": cursor, "limit": 1000}
        )
        assert len(page["events"]) <= running.settings.audit_page_max
        events += page["events"]
        cursor = page["next_cursor"]
        pages += 1
    actions = [e["action"] for e in events]
    assert actions.count("consent") == cap
    assert actions.count("consent_withdrawn") == cap
    assert len(events) <= 2 * cap + 10
    assert pages == -(-len(events) // running.settings.audit_page_max)


async def test_consent_repeated_with_the_same_value_writes_no_audit_entry(
    cast: Cast, running: RunningServer
) -> None:
    cid, outlet, doctor = await active(cast)
    admin = await cast.join(Role.ADMIN, "admin-1")
    first = await outlet.ok("consultation.consent", {"consultation_id": cid, "given": True})
    for _ in range(20):
        again = await outlet.ok("consultation.consent", {"consultation_id": cid, "given": True})
        assert again == first, "the consent already given is kept as it was"
        await doctor.ok("consultation.consent", {"consultation_id": cid, "given": True})
    page = await admin.ok("audit.list", {"consultation_id": cid})
    assert [e["action"] for e in page["events"]].count("consent") == 1
    assert page["next_cursor"] is None


async def test_audit_list_pages_with_a_cursor(cast: Cast, running: RunningServer) -> None:
    cid, outlet, doctor = await active(cast)
    admin = await cast.join(Role.ADMIN, "admin-1")
    for n in range(7):
        await doctor.ok("consultation.notes", {"consultation_id": cid, "notes": "x" * n})
    whole = (await admin.ok("audit.list", {"consultation_id": cid}))["events"]
    pages: list[list[dict[str, Any]]] = []
    cursor: int | None = 0
    while cursor is not None:
        page = await admin.ok("audit.list", {"consultation_id": cid, "cursor": cursor, "limit": 3})
        pages.append(page["events"])
        cursor = page["next_cursor"]
    assert [len(p) for p in pages[:-1]] == [3] * (len(pages) - 1)
    assert [e for p in pages for e in p] == whole
    assert [e["action"] for e in whole].count("notes") == 7
    assert await admin.refused("audit.list", {"consultation_id": cid, "limit": 0}) == (
        "bad_request"
    )
    assert await admin.refused("audit.list", {"consultation_id": "c-none"}) == "not_found"


async def test_outlet_reconnecting_with_781_open_consultations_gets_a_bounded_resume(
    cast: Cast, running: RunningServer
) -> None:
    """An older server let one kiosk open 781; its reconnect used to crash the handshake."""
    store = running.app[store_key]
    now = time.time()
    for n in range(781):
        await store.put_consultation(
            Consultation(
                id=f"c-legacy-{n:03}",
                service="ophthalmology",
                outlet_id="outlet-1",
                patient_ref=f"P-{n}",
                guardian_present=True,
                urgent=False,
                appointment_at=None,
                created_at=now + n / 1000,
                queued_at=now + n / 1000,
                # Dropped "just now" as far as the rejoin grace goes, so none ends meanwhile.
                participants={
                    "outlet-1": Participant(
                        "outlet-1",
                        Role.OUTLET,
                        "Kiosk",
                        connected=False,
                        disconnected_at=now + 600,
                    )
                },
            ),
            0,
        )
    limit = running.settings.max_open_consultations_per_outlet
    outlet = Peer(running.url, running.token(Role.OUTLET, "outlet-1"))
    cast.peers.append(outlet)
    # Generous waits: the machine running the tests may be busy; this is no speed check.
    await outlet.client.connect(
        running.url, auth={"token": outlet.token}, transports=["websocket"], wait_timeout=30
    )
    ready = await outlet.next("session.ready", within_s=30)
    resumed = [c["id"] for c in ready["resume"]["consultations"]]
    assert resumed == [f"c-legacy-{n:03}" for n in range(limit)], "the oldest, within the limit"
    latest: dict[str, int] = {}
    while set(latest) != set(resumed):
        push = await outlet.next("queue.position")
        assert push["consultation_id"] in resumed, "only resumed consultations are told"
        latest[push["consultation_id"]] = push["position"]
    assert sorted(latest.values()) == list(range(1, limit + 1))
    await asyncio.sleep(1.5)  # a few rounds: they tell connected kiosks only
    told = {p["consultation_id"] for p in outlet.pushes["queue.position"]}
    assert told == set(resumed)
    # Still a working connection, still refused more.
    assert await outlet.refused("consultation.check_in", check_in_payload("outlet-1")) == (
        "too_many_open_consultations"
    )
