"""Bad input gets a clear error ack to that client only; the server keeps serving."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import socketio
from pydantic import BaseModel, ConfigDict, Field

from rooms.errors import NotFound
from rooms.roles import Role
from signaling.dispatch import Caller, event
from tests.conftest import RunningServer
from web.keys import gateway_key


class Echo(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    text: str = Field(max_length=100)
    times: int = Field(default=1, ge=1, le=5)


async def echo(caller: Caller, message: Echo) -> dict[str, Any]:
    return {"ok": {"text": message.text * message.times, "from": caller.identity.subject}}


async def missing(caller: Caller, message: Echo) -> dict[str, Any]:
    raise NotFound(f"nothing called {message.text}")


async def crash(caller: Caller, message: Echo) -> dict[str, Any]:
    raise RuntimeError("boom")


@pytest.fixture
async def echo_server(server: RunningServer) -> RunningServer:
    server.app[gateway_key].add_events(
        [
            event("test.echo", Echo, [Role.OUTLET, Role.ADMIN], echo),
            event("test.missing", Echo, [Role.OUTLET], missing),
            event("test.crash", Echo, [Role.OUTLET], crash),
            event("test.admin_only", Echo, [Role.ADMIN], echo),
        ]
    )
    return server


@pytest.fixture
async def outlet(echo_server: RunningServer) -> AsyncIterator[socketio.AsyncClient]:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(
        echo_server.url, auth={"token": echo_server.token(Role.OUTLET, "outlet-1")}
    )
    yield client
    await client.disconnect()


async def test_valid_event_is_acknowledged(outlet: socketio.AsyncClient) -> None:
    ack = await outlet.call("test.echo", {"text": "ab", "times": 2}, timeout=5)
    assert ack == {"ok": {"text": "abab", "from": "outlet-1"}}


@pytest.mark.parametrize(
    ("event_name", "payload", "code"),
    [
        ("no.such.event", {}, "unknown_event"),
        ("test.echo", {"text": 5}, "bad_request"),
        ("test.echo", {"text": "a", "times": 99}, "bad_request"),
        ("test.echo", {"text": "a", "sneaky": True}, "bad_request"),
        ("test.echo", "just a string", "bad_request"),
        ("test.echo", {"text": "x" * 70_000}, "payload_too_large"),
        ("test.admin_only", {"text": "a"}, "forbidden"),
        ("test.missing", {"text": "a"}, "not_found"),
        ("test.crash", {"text": "a"}, "internal"),
    ],
    ids=[
        "unknown",
        "wrong-type",
        "out-of-range",
        "extra-field",
        "not-object",
        "oversized",
        "role",
        "domain-error",
        "crash",
    ],
)
async def test_bad_input_gets_error_ack_and_connection_survives(
    outlet: socketio.AsyncClient, event_name: str, payload: Any, code: str
) -> None:
    ack = await outlet.call(event_name, payload, timeout=5)
    assert set(ack) == {"error"}
    assert ack["error"]["code"] == code
    assert ack["error"]["message"]
    assert outlet.connected
    again = await outlet.call("test.echo", {"text": "still here"}, timeout=5)
    assert again["ok"]["text"] == "still here"


async def test_errors_reach_only_the_sender(
    echo_server: RunningServer, outlet: socketio.AsyncClient
) -> None:
    bystander = socketio.AsyncClient(reconnection=False)
    received: list[Any] = []
    bystander.on("*", lambda *args: received.append(args))
    await bystander.connect(
        echo_server.url, auth={"token": echo_server.token(Role.ADMIN, "admin-1")}
    )
    await outlet.call("no.such.event", {}, timeout=5)
    await outlet.call("test.crash", {"text": "a"}, timeout=5)
    ack = await bystander.call("test.admin_only", {"text": "ok"}, timeout=5)
    assert ack["ok"]["from"] == "admin-1"
    assert [args[0] for args in received if args[0] != "session.ready"] == []
    await bystander.disconnect()


async def test_unexpected_failure_is_logged_once_without_client_data(
    outlet: socketio.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    await outlet.call("test.crash", {"text": "secret-patient-note"}, timeout=5)
    failures = [
        r for r in caplog.records if r.name == "signaling.dispatch" and r.levelname == "ERROR"
    ]
    assert len(failures) == 1
    assert "secret-patient-note" not in failures[0].getMessage()
