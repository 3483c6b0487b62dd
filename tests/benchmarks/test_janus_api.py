"""The Janus API client of the relay comparison, against a scripted WebSocket."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from benchmarks._janus import JanusApi, JanusError, reply_outcome


class ScriptedSocket:
    """Answers each request with the messages ``script`` returns for it."""

    def __init__(self, script: Any) -> None:
        self.script = script
        self.sent: list[dict[str, Any]] = []
        self.incoming: asyncio.Queue[str | None] = asyncio.Queue()

    async def send_str(self, data: str) -> None:
        message = json.loads(data)
        self.sent.append(message)
        for reply in self.script(message):
            self.incoming.put_nowait(json.dumps(reply))

    async def receive_str(self) -> str:
        item = await self.incoming.get()
        if item is None:
            raise ConnectionError("closed")
        return item


def janus(message: dict[str, Any]) -> list[dict[str, Any]]:
    """What Janus with echotest answers; the plugin's event comes after an ack."""
    transaction = message["transaction"]
    kind = message["janus"]
    if kind == "create":
        return [{"janus": "success", "transaction": transaction, "data": {"id": 11}}]
    if kind == "attach":
        return [{"janus": "success", "transaction": transaction, "data": {"id": 22}}]
    if kind == "message":
        return [
            {"janus": "ack", "session_id": 11, "transaction": transaction},
            {"janus": "webrtcup", "session_id": 11, "sender": 22},
            {
                "janus": "event",
                "session_id": 11,
                "sender": 22,
                "transaction": transaction,
                "plugindata": {
                    "plugin": "janus.plugin.echotest",
                    "data": {"echotest": "event", "result": "ok"},
                },
                "jsep": {"type": "answer", "sdp": "v=0 answer"},
            },
        ]
    if kind in ("keepalive", "destroy"):
        return [{"janus": "ack" if kind == "keepalive" else "success", "transaction": transaction}]
    raise AssertionError(kind)


async def test_session_attach_offer_and_keepalive_carry_the_ids_janus_gave() -> None:
    socket = ScriptedSocket(janus)
    api = JanusApi(socket)
    api.start()
    assert await api.create_session() == 11
    assert await api.attach() == 22
    answer = await api.offer("v=0 offer", {"audio": True, "video": True})
    await api.keepalive()
    await api.close()
    assert answer == "v=0 answer"
    create, attach, offer, keepalive, destroy = socket.sent
    assert create == {"janus": "create", "transaction": create["transaction"]}
    assert attach["plugin"] == "janus.plugin.echotest" and attach["session_id"] == 11
    assert "handle_id" not in attach
    assert offer["session_id"] == 11 and offer["handle_id"] == 22
    assert offer["body"] == {"audio": True, "video": True}
    assert offer["jsep"] == {"type": "offer", "sdp": "v=0 offer"}
    assert keepalive["janus"] == "keepalive" and "handle_id" not in keepalive
    assert destroy["janus"] == "destroy" and destroy["session_id"] == 11
    assert len({m["transaction"] for m in socket.sent}) == 5
    # the message without a transaction is kept, not taken for a reply
    assert api.events == [{"janus": "webrtcup", "session_id": 11, "sender": 22}]


async def test_an_error_of_janus_fails_the_request_with_its_code_and_reason() -> None:
    def refuse(message: dict[str, Any]) -> list[dict[str, Any]]:
        error = {"code": 458, "reason": "No such session"}
        return [{"janus": "error", "transaction": message["transaction"], "error": error}]

    api = JanusApi(ScriptedSocket(refuse))
    api.start()
    with pytest.raises(JanusError, match="458: No such session"):
        await api.create_session()
    await api.close()


async def test_a_plugin_error_and_a_reply_without_answer_fail_the_offer() -> None:
    def plugin_error(message: dict[str, Any]) -> list[dict[str, Any]]:
        data = {"echotest": "event", "error_code": 413, "error": "Invalid element"}
        return [
            {"janus": "ack", "transaction": message["transaction"]},
            {
                "janus": "event",
                "transaction": message["transaction"],
                "plugindata": {"plugin": "janus.plugin.echotest", "data": data},
            },
        ]

    api = JanusApi(ScriptedSocket(plugin_error))
    api.start()
    with pytest.raises(JanusError, match="plugin error 413: Invalid element"):
        await api.offer("v=0", {"audio": True})

    def no_jsep(message: dict[str, Any]) -> list[dict[str, Any]]:
        data = {"echotest": "event", "result": "ok"}
        plugindata = {"data": data}
        return [{"janus": "event", "transaction": message["transaction"], "plugindata": plugindata}]

    await api.close()
    api = JanusApi(ScriptedSocket(no_jsep))
    api.start()
    with pytest.raises(JanusError, match="no answer"):
        await api.offer("v=0", {"audio": True})
    await api.close()


async def test_a_lost_connection_fails_what_waits_instead_of_hanging() -> None:
    socket = ScriptedSocket(lambda message: [])
    api = JanusApi(socket)
    api.start()
    waiting = asyncio.create_task(api.create_session())
    await asyncio.sleep(0)
    socket.incoming.put_nowait(None)
    with pytest.raises(JanusError, match="connection to Janus lost"):
        await waiting


async def test_a_request_without_reply_times_out() -> None:
    api = JanusApi(ScriptedSocket(lambda message: []))
    api.start()
    with pytest.raises(TimeoutError):
        await api.request({"janus": "create"}, timeout_s=0.05)
    await api.close()


def test_an_ack_is_final_only_when_asked() -> None:
    ack = {"janus": "ack", "transaction": "t1"}
    assert reply_outcome(ack, ack_is_final=False) is None
    reply = reply_outcome(ack, ack_is_final=True)
    assert reply is not None and reply.jsep is None
