"""Chat over Socket.IO, black box: each message reaches every other participant exactly once,
a guest at the door is refused, sending is rate-limited, the history pages, a clinician covering
the service may write to a waiting outlet (audited), admins read it (audited)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from rooms.roles import Role
from tests.clinical.conftest import admitted_guest, start_call
from tests.conftest import RunningServer, start_server
from tests.signaling.consultation_peers import Cast, check_in_payload
from web.settings import Settings


async def test_each_message_reaches_every_other_participant_once(
    cast: Cast, server: RunningServer
) -> None:
    call = await start_call(cast)
    ref = {"consultation_id": call.consultation_id}
    guest, guest_id = await admitted_guest(cast, server, call)
    assert await guest.refused("chat.send", {**ref, "text": "hello?"}) == "forbidden", "at the door"
    assert await guest.refused("chat.list", ref) == "forbidden"
    await call.doctor.ok("consultation.admit", {**ref, "guest_id": guest_id})
    await guest.next("consultation.admitted")

    people = {"outlet-1": call.outlet, "dr-a": call.doctor, guest_id: guest}
    texts = {"outlet-1": "请稍等，孩子在找眼镜", "dr-a": "No hurry.", guest_id: "Mum here"}
    sent = {}
    for sender, peer in people.items():
        sent[sender] = (await peer.ok("chat.send", {**ref, "text": texts[sender]}))["message"]
        assert sent[sender]["from"] == sender and sent[sender]["text"] == texts[sender]
        assert set(sent[sender]) >= {"message_id", "from", "name", "role", "text", "sent_at"}
    await asyncio.sleep(0.3)
    for receiver, peer in people.items():
        got = [m["message"]["message_id"] for m in peer.pushes["chat.message"]]
        expected = [sent[s]["message_id"] for s in people if s != receiver]
        assert sorted(got) == sorted(expected), receiver
    history = await guest.ok("chat.list", ref)
    assert [m["text"] for m in history["messages"]] == list(texts.values())
    assert history["cursor"] is None


async def test_text_is_checked(cast: Cast) -> None:
    call = await start_call(cast)
    ref = {"consultation_id": call.consultation_id}
    assert await call.outlet.refused("chat.send", {**ref, "text": "   "}) == "bad_request"
    assert await call.outlet.refused("chat.send", {**ref, "text": "x" * 1001}) == "bad_request"
    assert await call.outlet.refused("chat.send", {**ref, "text": "a\x07b"}) == "bad_request"
    assert (await call.outlet.ok("chat.send", {**ref, "text": "x" * 1000}))["message"]
    other = await cast.outlet("outlet-2")
    assert await other.refused("chat.send", {**ref, "text": "hi"}) == "forbidden"


async def test_history_pages_and_admins_read_it_audited(cast: Cast) -> None:
    call = await start_call(cast)
    ref = {"consultation_id": call.consultation_id}
    for i in range(55):
        await call.doctor.ok("chat.send", {**ref, "text": f"line {i}"})
    first = await call.outlet.ok("chat.list", ref)
    assert len(first["messages"]) == 50 and first["cursor"] is not None
    second = await call.outlet.ok("chat.list", {**ref, "cursor": first["cursor"]})
    assert [m["text"] for m in second["messages"]] == [f"line {i}" for i in range(50, 55)]
    assert second["cursor"] is None
    admin = await cast.join(Role.ADMIN, "admin-1")
    assert len((await admin.ok("chat.list", ref))["messages"]) == 50
    audit = await admin.ok("audit.list", ref)
    assert "chat_read" in [e["action"] for e in audit["events"]]


async def test_a_clinician_covering_the_service_writes_to_a_waiting_outlet(cast: Cast) -> None:
    outlet = await cast.outlet("outlet-1")
    cid = (await outlet.ok("consultation.check_in", check_in_payload("outlet-1")))[
        "consultation_id"
    ]
    ref = {"consultation_id": cid}
    assert await outlet.refused("chat.send", {**ref, "text": "anyone?"}) == "forbidden"
    covering = await cast.specialist("dr-a")
    elsewhere = await cast.specialist("dr-p", "paediatrics")
    note = "I will be with you in five minutes"
    message = (await covering.ok("chat.send", {**ref, "text": note}))["message"]
    assert message["to"] == "outlet-1"
    pushed = await outlet.next("chat.message")
    assert pushed["message"]["text"] == note and pushed["message"]["name"] == "dr-a"
    assert await elsewhere.refused("chat.send", {**ref, "text": "hi"}) == "forbidden"
    admin = await cast.join(Role.ADMIN, "admin-1")
    audit = await admin.ok("audit.list", ref)
    assert "chat_waiting_message" in [e["action"] for e in audit["events"]]
    # Once the call starts the outlet reads it in the history, beside the call's messages.
    await covering.ok("consultation.accept", {**ref, "pick": True})
    await outlet.ok("consultation.join", ref)
    assert [m["text"] for m in (await outlet.ok("chat.list", ref))["messages"]] == [note]


@pytest.fixture
async def slow_server(test_settings: Settings) -> AsyncIterator[RunningServer]:
    running = await start_server(replace(test_settings, events_per_s=2.0, event_burst=12))
    yield running
    await running.runner.cleanup()


async def test_sending_is_rate_limited(slow_server: RunningServer) -> None:
    people = Cast(slow_server)
    try:
        call = await start_call(people)
        ref = {"consultation_id": call.consultation_id}
        codes = [
            (await call.outlet.call("chat.send", {**ref, "text": f"m{i}"})).get("error", {})
            for i in range(12)
        ]
        assert {c.get("code") for c in codes if c} == {"rate_limited"}
        await asyncio.sleep(0.3)
        delivered = len(call.doctor.pushes["chat.message"])
        assert 0 < delivered < 12
        assert delivered == sum(1 for c in codes if not c), "a refused message is not delivered"
    finally:
        await people.close()
