"""Strict input and per-connection limits, with the abuse cases found in review as regressions
(same numbers): ``"yes"`` as a bool, a 10,950-character Chinese note, a raw ``disconnect``
event, forged log lines, an event flood, 60,000 ICE candidates before an offer."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace

import pytest

from tests.conftest import RunningServer, start_server
from tests.signaling.consultation_peers import Cast, Peer, check_in_payload
from tests.signaling.raw_socket import RawSocket
from web.keys import media_registry_key, records_key, registry_key
from web.settings import Settings

CANDIDATE = "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host"


@pytest.fixture
def test_settings(test_settings: Settings) -> Settings:
    """Room for the quick loops below; the rate limit has its own test and server."""
    return replace(test_settings, events_per_s=1000.0, event_burst=1000)


async def active_consultation(cast: Cast) -> tuple[str, Peer, Peer]:
    outlet = await cast.outlet("outlet-7")
    checked = await outlet.ok("consultation.check_in", check_in_payload("outlet-7"))
    doctor = await cast.specialist("dr-li")
    await doctor.ok("presence.set", {"status": "available"})
    await doctor.next("consultation.offered")
    consultation_id = str(checked["consultation_id"])
    await doctor.ok("consultation.accept", {"consultation_id": consultation_id})
    await outlet.ok("consultation.join", {"consultation_id": consultation_id})
    return consultation_id, outlet, doctor


@pytest.mark.parametrize("value", ["yes", 1, "true", 0, None, [True]])
async def test_guardian_present_must_be_a_real_bool(cast: Cast, value: object) -> None:
    outlet = await cast.outlet("outlet-1")
    payload = check_in_payload("outlet-1", guardian_present=value)
    assert await outlet.refused("consultation.check_in", payload) == "bad_request"
    await outlet.ok("consultation.check_in", check_in_payload("outlet-1"))


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("consultation.check_in", check_in_payload("outlet-1", urgent="false")),
        ("consultation.check_in", check_in_payload("outlet-1", appointment_at=1700000000)),
        ("consultation.check_in", check_in_payload("outlet-1", appointment_at="2026-11-30")),
        ("consultation.invite", {"consultation_id": "c-1", "ttl_s": "900"}),
        ("consultation.invite", {"consultation_id": "c-1", "ttl_s": 900.0}),
        ("consultation.consent", {"consultation_id": "c-1", "given": "true"}),
        ("consultation.consent", {"consultation_id": "c-1", "given": True, "purpose": "research"}),
        ("consultation.cancel", {"consultation_id": 12}),
        ("recording.state", {"consultation_id": 12}),
        ("rtc.receive_mode", {"consultation_id": "c-1", "video": 1}),
    ],
)
async def test_no_coercion_anywhere(cast: Cast, event: str, payload: dict[str, object]) -> None:
    outlet = await cast.outlet("outlet-1")
    assert await outlet.refused(event, payload) == "bad_request"


async def test_a_time_with_its_zone_is_accepted_as_text(cast: Cast) -> None:
    outlet = await cast.outlet("outlet-1")
    payload = check_in_payload("outlet-1", appointment_at="2026-11-30T09:00:00+08:00")
    result = await outlet.ok("consultation.check_in", payload)
    assert result["consultation"]["appointment_at"].startswith("2026-11-30T01:00:00")


async def test_a_long_chinese_note_within_the_byte_limit_is_accepted(cast: Cast) -> None:
    consultation_id, _, doctor = await active_consultation(cast)
    note = "患儿视力复查" * 1825  # 10,950 characters: 32,850 UTF-8 bytes, 65,700 as \\uXXXX
    assert len(note) == 10_950 and len(json.dumps(note)) > 64 * 1024
    result = await doctor.ok(
        "consultation.notes", {"consultation_id": consultation_id, "notes": note}
    )
    assert result["length"] == 10_950


async def test_the_size_limit_counts_utf8_bytes(cast: Cast) -> None:
    consultation_id, _, doctor = await active_consultation(cast)
    over = "中" * 22_000  # 66,000 bytes > 64 KiB
    payload = {"consultation_id": consultation_id, "notes": over}
    assert await doctor.refused("consultation.notes", payload) == "payload_too_large"
    under = "中" * 21_000  # 63,000 bytes: passes the size cap, fails the 20,000 character rule
    payload = {"consultation_id": consultation_id, "notes": under}
    assert await doctor.refused("consultation.notes", payload) == "bad_request"


async def test_a_raw_disconnect_event_writes_no_audit_entry(
    server: RunningServer, cast: Cast
) -> None:
    consultation_id, outlet, _ = await active_consultation(cast)
    raw = await RawSocket.open(server.url)
    try:
        assert (await raw.authenticate(outlet.token)).startswith("40")
        ack = await raw.call("disconnect", "client namespace disconnect")
        assert ack["error"]["code"] == "reserved_event"
    finally:
        await raw.close()
    await outlet.ok("consultation.join", {"consultation_id": consultation_id})
    audit = await server.app[records_key].audit.audit_for(consultation_id)
    assert not [e for e in audit if e.action == "disconnect" and e.actor == "outlet-7"]


async def test_event_names_are_logged_escaped(cast: Cast, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="signaling.dispatch")
    outlet = await cast.outlet("outlet-1")
    forged = "x\n2026-11-30 INFO signaling.server connected role=admin"
    assert await outlet.refused(forged, {}) == "unknown_event"
    lines = [r.getMessage() for r in caplog.records if r.name == "signaling.dispatch"]
    assert lines and all("\n" not in line for line in lines)
    assert any("'x\\n2026" in line for line in lines)


async def test_events_per_second_are_limited_per_connection(test_settings: Settings) -> None:
    running = await start_server(replace(test_settings, events_per_s=2.0, event_burst=10))
    people = Cast(running)
    try:
        outlet, other = await people.outlet("outlet-1"), await people.outlet("outlet-2")
        payload = {"consultation_id": "c-none"}
        codes = [await outlet.refused("consultation.cancel", payload) for _ in range(12)]
        assert codes[:10] == ["not_found"] * 10
        assert codes[10:] == ["rate_limited"] * 2
        # another connection is not affected, and the limited one recovers
        assert await other.refused("consultation.cancel", payload) == "not_found"
        await asyncio.sleep(0.6)
        assert await outlet.refused("consultation.cancel", payload) == "not_found"
        samples = running.app[registry_key].get_sample_value(
            "teleconsult_signaling_events_total",
            {"event": "consultation.cancel", "outcome": "rate_limited"},
        )
        assert samples == 2
    finally:
        await people.close()
        await running.runner.cleanup()


async def test_sixty_thousand_candidates_before_an_offer_are_not_all_buffered(
    test_settings: Settings,
) -> None:
    settings = replace(
        test_settings, events_per_s=1e6, event_burst=100_000, presence_timeout_s=60.0
    )
    running = await start_server(settings)
    people = Cast(running)
    try:
        consultation_id, outlet, _ = await active_consultation(people)
        raw = await RawSocket.open(running.url)
        assert (await raw.authenticate(outlet.token)).startswith("40")
        frame = "42" + json.dumps(
            [
                "rtc.candidate",
                {
                    "consultation_id": consultation_id,
                    "candidate": {"candidate": CANDIDATE, "sdpMid": "0", "sdpMLineIndex": 0},
                },
            ]
        )
        for sent in range(60_000):
            await raw.send(frame)
            if sent % 500 == 0:
                await asyncio.sleep(0)  # let this client answer the server's pings
        payload = json.loads(frame[2:])[1]
        last = await raw.call("rtc.candidate", payload, within_s=120)
        await raw.close()
        assert last["error"]["code"] == "too_many_candidates"
        router = running.app[media_registry_key].router(consultation_id)
        peer = router.peer("outlet-7")
        assert len(peer._early_candidates) == settings.max_candidates_per_peer
        counted = running.app[registry_key].get_sample_value(
            "teleconsult_signaling_events_total",
            {"event": "rtc.candidate", "outcome": "too_many_candidates"},
        )
        assert counted == 60_001 - settings.max_candidates_per_peer
    finally:
        await people.close()
        await running.runner.cleanup()


async def test_candidates_below_the_limit_are_taken(cast: Cast) -> None:
    consultation_id, outlet, _ = await active_consultation(cast)
    candidate = {"candidate": CANDIDATE, "sdpMid": "0", "sdpMLineIndex": 0}
    for _ in range(64):
        await outlet.ok(
            "rtc.candidate", {"consultation_id": consultation_id, "candidate": candidate}
        )
    code = await outlet.refused(
        "rtc.candidate", {"consultation_id": consultation_id, "candidate": candidate}
    )
    assert code == "too_many_candidates"
