"""Transport guards against a real running server: binary packets, malformed frames, reserved
event names, re-authentication, refused and unauthenticated sockets, connection caps."""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
import socketio

from rooms.roles import Role
from signaling.guarded_server import GuardedServer
from tests.conftest import RunningServer, start_server
from tests.signaling.raw_socket import RawSocket
from web.keys import registry_key, sio_key
from web.settings import Settings


@pytest.fixture
async def guarded(test_settings: Settings) -> AsyncIterator[RunningServer]:
    settings = replace(test_settings, auth_timeout_s=1.0, max_connections_per_address=4)
    running = await start_server(settings)
    yield running
    await running.runner.cleanup()


def refusals(server: RunningServer, reason: str) -> float:
    value = server.app[registry_key].get_sample_value(
        "teleconsult_connection_refusals_total", {"reason": reason}
    )
    return value or 0.0


async def outlet_socket(server: RunningServer, subject: str = "outlet-1") -> RawSocket:
    raw = await RawSocket.open(server.url)
    reply = await raw.authenticate(server.token(Role.OUTLET, subject))
    if not reply.startswith("40{"):
        await raw.close()
        raise AssertionError(reply)
    return raw


def test_the_wrapped_socketio_entry_points_still_exist() -> None:
    """Tripwire for python-socketio upgrades: the subclass wraps these private methods."""
    base = socketio.AsyncServer
    expected = {
        "_handle_eio_connect": ["self", "eio_sid", "environ"],
        "_handle_eio_message": ["self", "eio_sid", "data"],
        "_handle_eio_disconnect": ["self", "eio_sid", "reason"],
        "_handle_connect": ["self", "eio_sid", "namespace", "data"],
    }
    for name, parameters in expected.items():
        assert list(inspect.signature(getattr(base, name)).parameters) == parameters, name
        assert name in GuardedServer.__dict__


async def test_binary_event_claiming_a_million_attachments_is_refused_and_closed(
    guarded: RunningServer,
) -> None:
    raw = await outlet_socket(guarded)
    try:
        await raw.send('451000000-1["rtc.candidate",{"_placeholder":true,"num":0}]')
        assert await raw.closed_by_server()
    finally:
        await raw.close()
    assert refusals(guarded, "binary_refused") == 1
    assert guarded.app[sio_key]._binary_packet == {}  # nothing was kept for the attachments


async def test_binary_frames_are_refused_and_closed(guarded: RunningServer) -> None:
    raw = await outlet_socket(guarded)
    try:
        await raw.send_bytes(b"\x04" + b"x" * 1000)
        assert await raw.closed_by_server()
    finally:
        await raw.close()


@pytest.mark.parametrize(
    "frame",
    ["4x", "42[", "49", "44{}", "42" + "[" * 50_000, "4/other,", '42"just text"', "42[]", "42[7]"],
    ids=["type", "json", "unknown", "connect-error", "deep", "namespace", "text", "empty", "name"],
)
async def test_malformed_frames_get_an_answer_or_a_close_and_no_traceback(
    guarded: RunningServer, frame: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    raw = await outlet_socket(guarded)
    try:
        await raw.send(frame.replace("42", "421", 1) if frame.startswith("42") else frame)
        if frame in ('42"just text"', "42[]", "42[7]"):
            ack = await raw.ack(1)
            assert ack["error"]["code"] == "bad_request" and ack["error"]["message"]
            assert (await raw.call("consultation.cancel", {"consultation_id": "c-x"}))["error"]
        else:
            assert await raw.closed_by_server()
    finally:
        await raw.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    # the server keeps serving everyone else
    other = await outlet_socket(guarded, "outlet-2")
    await other.close()


async def test_reserved_event_names_never_reach_the_servers_handlers(
    guarded: RunningServer,
) -> None:
    raw = await outlet_socket(guarded)
    admin = guarded.token(Role.ADMIN, "admin-1")
    try:
        for name in ("connect", "disconnect", "*", "connect_error"):
            ack = await raw.call(name, {}, {"token": admin})
            assert ack["error"]["code"] == "reserved_event", name
        # still the outlet: the re-sent connect with an admin token did not make it admin
        ack = await raw.call("admin.overview", {})
        assert ack["error"]["code"] == "forbidden"
    finally:
        await raw.close()


async def test_a_connection_with_an_identity_cannot_authenticate_again(
    guarded: RunningServer,
) -> None:
    raw = await outlet_socket(guarded)
    try:
        await raw.send("40" + json.dumps({"token": guarded.token(Role.ADMIN, "admin-1")}))
        assert await raw.closed_by_server()
    finally:
        await raw.close()
    assert refusals(guarded, "already_connected") == 1


async def test_a_socket_with_a_refused_token_is_closed(guarded: RunningServer) -> None:
    raw = await RawSocket.open(guarded.url)
    try:
        reply = await raw.authenticate("not-a-token")
        assert reply.startswith("44") and "token_invalid" in reply
        assert await raw.closed_by_server()
    finally:
        await raw.close()
    assert refusals(guarded, "auth_refused") == 1


async def test_a_socket_that_does_not_authenticate_in_time_is_closed(
    guarded: RunningServer,
) -> None:
    idle = await RawSocket.open(guarded.url)
    prompt = await outlet_socket(guarded)
    try:
        reply = await idle.receive(within_s=3.0)
        assert reply is not None and reply.startswith("44") and "auth_timeout" in reply
        assert await idle.closed_by_server()
        # an authenticated socket outlives the timeout
        ack = await prompt.call("consultation.cancel", {"consultation_id": "c-none"})
        assert ack["error"]["code"] == "not_found"
    finally:
        await idle.close()
        await prompt.close()
    assert refusals(guarded, "auth_timeout") == 1


async def connect_client(server: RunningServer, subject: str) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(
        server.url,
        auth={"token": server.token(Role.OUTLET, subject)},
        transports=["websocket"],
        wait_timeout=5,
    )
    return client


async def test_connections_per_address_are_capped(guarded: RunningServer) -> None:
    clients = [await connect_client(guarded, f"outlet-{i}") for i in range(4)]
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            await connect_client(guarded, "outlet-over")
        assert refusals(guarded, "too_many_connections_from_address") == 1
        await clients.pop().disconnect()
        clients.append(await connect_client(guarded, "outlet-again"))
    finally:
        for client in clients:
            await client.disconnect()


async def test_connections_in_total_are_capped(test_settings: Settings) -> None:
    running = await start_server(replace(test_settings, max_connections=2))
    clients = [await connect_client(running, f"outlet-{i}") for i in range(2)]
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            await connect_client(running, "outlet-over")
        assert refusals(running, "too_many_connections") == 1
        await clients.pop().disconnect()
        clients.append(await connect_client(running, "outlet-again"))
    finally:
        for client in clients:
            await client.disconnect()
        await running.runner.cleanup()
