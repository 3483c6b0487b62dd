"""Calls through a real coturn relay: relay-only aiortc participants over TURN/TCP, the path the
server reports, the relayed-sessions counter, and coturn refusing bad or expired credentials."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from aioice import stun, turn
from aiortc import RTCIceServer

from media.aiortc_adapter import selected_path
from signaling.turn import mint_credentials
from tests.conftest import RunningServer, start_server
from tests.coturn import Coturn
from tests.media.clients import ClientPeer, assert_see_and_hear_each_other
from tests.signaling.consultation_peers import Cast, Peer
from tests.signaling.test_rtc_events import MediaClient, active_consultation
from web.settings import Settings

RED, GREEN = (220, 40, 40), (40, 200, 60)


@pytest.fixture
async def running(test_settings: Settings, coturn: Coturn) -> AsyncIterator[RunningServer]:
    settings = replace(
        test_settings,
        turn_urls=(coturn.url("tcp"),),
        turn_secret=coturn.secret,
        ice_transport_policy="relay",
        stats_interval_s=0.5,
    )
    running = await start_server(settings)
    yield running
    await running.runner.cleanup()


def relay_peer(participant_id: str, ready: dict[str, Any], rgb: tuple[int, int, int]) -> ClientPeer:
    """A relay-only aiortc peer configured from ``session.ready`` as a browser would be."""
    assert ready["ice_transport_policy"] == "relay"
    servers = [
        RTCIceServer(s["urls"], s.get("username"), s.get("credential"))
        for s in ready["ice_servers"]
    ]
    return ClientPeer(participant_id, rgb=rgb, ice_servers=servers, relay_only=True)


async def report_path(client: MediaClient) -> dict[str, Any]:
    """Send ``rtc.path`` from the aiortc peer's own nominated pair, as the pages do."""
    path = selected_path(client.media.pc)
    assert path is not None, "the peer has no nominated candidate pair"
    report = {
        "consultation_id": client.consultation_id,
        "candidate_type": path.local_type,
        "protocol": path.protocol,
        "relay_protocol": path.relay_protocol,
    }
    await client.peer.ok("rtc.path", report)
    return report


async def test_relay_only_participants_see_and_hear_each_other_through_turn_tcp(
    cast: Cast, running: RunningServer, coturn: Coturn
) -> None:
    consultation_id, outlet, doctor = await active_consultation(cast)
    ready_outlet = outlet.pushes["session.ready"][0]
    ready_doctor = doctor.pushes["session.ready"][0]
    turn_entry = ready_outlet["ice_servers"][-1]
    assert turn_entry["urls"] == [coturn.url("tcp")]
    assert turn_entry["username"].endswith(":outlet-7")
    outlet_media = MediaClient(outlet, relay_peer("outlet-7", ready_outlet, RED), consultation_id)
    doctor_media = MediaClient(doctor, relay_peer("dr-li", ready_doctor, GREEN), consultation_id)
    try:
        await outlet_media.start()
        await doctor_media.start()
        await assert_see_and_hear_each_other(outlet_media.media, doctor_media.media)
        # Only relayed candidates were offered: the media went through coturn.
        for client in (outlet_media, doctor_media):
            offer = client.media.pc.localDescription.sdp
            types = set(re.findall(r"a=candidate:\S+ \d+ \S+ \d+ \S+ \d+ typ (\w+)", offer))
            assert types == {"relay"}

        assert coturn.allocations("outlet-7") == {turn_entry["username"]}
        reports = [await report_path(c) for c in (outlet_media, doctor_media)]
        assert all(r["candidate_type"] == "relay" for r in reports)
        assert all(r["relay_protocol"] == "tcp" for r in reports)

        stats = await doctor.next(
            "rtc.stats",
            lambda p: any(
                s["participant_id"] == "outlet-7" and s["client_candidate_type"]
                for s in p["participants"]
            ),
        )
        outlet_stats = next(s for s in stats["participants"] if s["participant_id"] == "outlet-7")
        assert outlet_stats["candidate_type"] == "relay"  # the server sees coturn's address
        assert outlet_stats["candidate_protocol"] == "udp"  # server to coturn
        assert outlet_stats["client_candidate_type"] == "relay"
        assert outlet_stats["client_relay_protocol"] == "tcp"  # kiosk to coturn

        metrics = await running.metrics_text()
        assert 'teleconsult_media_relayed_sessions_total{protocol="tcp"} 2.0' in metrics
    finally:
        await outlet_media.close()
        await doctor_media.close()


async def test_session_ready_credentials_are_never_logged(
    cast: Cast, caplog: pytest.LogCaptureFixture, coturn: Coturn
) -> None:
    caplog.set_level("DEBUG")
    outlet = await cast.outlet("outlet-9")
    ready = outlet.pushes["session.ready"][0]
    credential = ready["ice_servers"][-1]["credential"]
    assert credential and credential not in caplog.text
    assert coturn.secret not in caplog.text


async def allocate(coturn: Coturn, username: str, password: str, transport: str) -> None:
    """Ask coturn for a relayed address over udp, tcp or tls (``turns:``); raises if refused."""
    tls = transport == "tls"
    relay_transport, _ = await turn.create_turn_endpoint(
        asyncio.DatagramProtocol,
        ("127.0.0.1", coturn.tls_port if tls else coturn.port),
        username=username,
        password=password,
        ssl=coturn.tls_context() if tls else None,
        transport="tcp" if tls else transport,
    )
    relay_transport.close()
    await asyncio.sleep(0)


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
async def test_coturn_accepts_minted_credentials_and_refuses_forged_or_expired_ones(
    coturn: Coturn, transport: str
) -> None:
    valid = mint_credentials(coturn.secret, "outlet-7", int(time.time()) + 600)
    await allocate(coturn, valid.username, valid.password, transport)

    forged = mint_credentials("not-the-secret-" + "q" * 30, "outlet-7", int(time.time()) + 600)
    with pytest.raises(stun.TransactionFailed) as refused:
        await allocate(coturn, forged.username, forged.password, transport)
    assert refused.value.response.attributes["ERROR-CODE"][0] == 401

    expired = mint_credentials(coturn.secret, "outlet-7", int(time.time()) - 60)
    with pytest.raises(stun.TransactionFailed) as refused:
        await allocate(coturn, expired.username, expired.password, transport)
    assert refused.value.response.attributes["ERROR-CODE"][0] == 401


async def test_fresh_credentials_arrive_before_the_old_ones_expire_and_work(
    test_settings: Settings, coturn: Coturn
) -> None:
    settings = replace(
        test_settings, turn_urls=(coturn.url("udp"),), turn_secret=coturn.secret, turn_ttl_s=3
    )
    running = await start_server(settings)
    people = Cast(running)
    try:
        outlet: Peer = await people.outlet("outlet-3")
        ready = outlet.pushes["session.ready"][0]
        expires_at = ready["ice_servers_expire_at"]
        assert ready["ice_transport_policy"] == "all"
        refresh = await outlet.next("session.ice_servers", within_s=5)
        assert time.time() < expires_at
        assert refresh["expires_at"] > expires_at
        entry = refresh["ice_servers"][-1]
        assert entry["username"] == f"{refresh['expires_at']}:outlet-3"
        await allocate(coturn, entry["username"], entry["credential"], "udp")
    finally:
        await people.close()
        await running.runner.cleanup()
