"""Property-based fuzzing of the signaling protocol against a real running server.

Every role sends every registered event (and reserved, empty and forged names) with payloads
drawn from arbitrary JSON and from the protocol's own field names and plausible values. The
properties: each request gets exactly one well-formed acknowledgement (``{"ok": ...}`` or
``{"error": {"code", "message"}}``), never ``internal``; raw frames get an answer or a close,
never a traceback; the server keeps serving and its memory stays bounded.

The budget is fixed for CI: derandomized, a bounded number of examples, no example database.
The server and the clients run on one event loop in a background thread; the properties are
checked from the test thread, which is how hypothesis drives an asyncio system.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import Counter
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rooms.roles import Role
from signaling.dispatch import RESERVED_EVENTS
from tests.conftest import RunningServer, free_port, start_server
from tests.signaling.raw_socket import RawSocket
from web.keys import gateway_key
from web.settings import Settings

T = TypeVar("T")
FUZZ = settings(
    max_examples=500,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
FRAMES = settings(FUZZ, max_examples=120)
RSS_GROWTH_LIMIT_MB = 150


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


class LoopThread:
    """An event loop in a daemon thread; ``run`` waits for a coroutine's result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        async def cancel_leftovers() -> None:  # e.g. engine.io's ping timers of closed sockets
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(cancel_leftovers())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@dataclass
class Arena:
    """A running server, one raw authenticated socket per role, and a live consultation."""

    loop: LoopThread
    server: RunningServer
    sockets: dict[Role, RawSocket]
    consultation_id: str
    event_names: list[str]
    field_names: list[str]
    sent: Counter[Role] = field(default_factory=Counter)


async def _open_arena(tmp: Path) -> tuple[RunningServer, dict[Role, RawSocket], str]:
    config = Settings(
        records_url=f"sqlite:///{tmp / 'records.db'}",
        secret="fuzz-secret-" + "f" * 40,
        port=free_port(),
        media_ips=("127.0.0.1",),
        recordings_dir=tmp / "recordings",
        offer_timeout_s=2.0,
        rejoin_grace_s=2.0,
        empty_room_grace_s=30.0,
        presence_timeout_s=30.0,
        events_per_s=10_000.0,
        event_burst=10_000,
    )
    server = await start_server(config)
    sockets: dict[Role, RawSocket] = {}
    tokens = {
        Role.OUTLET: server.token(Role.OUTLET, "outlet-1"),
        Role.SPECIALIST: server.token(Role.SPECIALIST, "dr-li", services=("ophthalmology",)),
        Role.COUNSELLOR: server.token(Role.COUNSELLOR, "cn-wang", services=("counselling",)),
        Role.ADMIN: server.token(Role.ADMIN, "admin-1"),
    }
    for role, token in tokens.items():
        sockets[role] = await RawSocket.open(server.url)
        assert (await sockets[role].authenticate(token)).startswith("40")
    checked = await sockets[Role.OUTLET].call(
        "consultation.check_in",
        {
            "service": "ophthalmology",
            "outlet_id": "outlet-1",
            "patient_ref": "P-1",
            "guardian_present": True,
        },
    )
    consultation_id = str(checked["ok"]["consultation_id"])
    guest = server.token(Role.GUEST, "guest-1", consultation_id=consultation_id)
    sockets[Role.GUEST] = await RawSocket.open(server.url)
    assert (await sockets[Role.GUEST].authenticate(guest)).startswith("40")
    return server, sockets, consultation_id


@pytest.fixture(scope="module")
def arena(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Arena]:
    loop = LoopThread()
    server, sockets, consultation_id = loop.run(
        _open_arena(tmp_path_factory.mktemp("fuzz")), timeout=60
    )
    specs = server.app[gateway_key].dispatcher.specs
    names = sorted({name for spec in specs for name in spec.model.model_fields})
    yield Arena(loop, server, sockets, consultation_id, [s.name for s in specs], names)

    async def close() -> None:
        for raw in sockets.values():
            await raw.close()
        await server.runner.cleanup()

    loop.run(close(), timeout=60)
    loop.stop()


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=24)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=6,
)
plausible = st.sampled_from(
    [
        "ophthalmology",
        "counselling",
        "outlet-1",
        "dr-li",
        "guest-1",
        "P-1",
        "available",
        "busy",
        "recording",
        "parent",
        "camera",
        "completed",
        "2026-11-30T09:00:00+00:00",
        "yes",
        "true",
        1,
        0,
        900,
        True,
        False,
        None,
        "",
        "x" * 300,
        "中" * 50,
        "a\nb",
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n",
        {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0"},
    ]
)


@st.composite
def payloads(draw: st.DrawFn, arena: Arena) -> Any:
    """Arbitrary JSON, or an object made of the protocol's field names and plausible values."""
    if draw(st.integers(0, 4)) == 0:
        return draw(json_values)
    keys = draw(st.lists(st.sampled_from(arena.field_names), max_size=5, unique=True))
    payload = {key: draw(plausible | json_values) for key in keys}
    if draw(st.booleans()):
        payload["consultation_id"] = draw(
            st.sampled_from([arena.consultation_id, "c-missing"]) | st.text(max_size=20)
        )
    return payload


def event_names(arena: Arena) -> st.SearchStrategy[str]:
    odd = sorted(RESERVED_EVENTS) + ["", "x" * 200, "queue.list\n", "consultation"]
    return st.sampled_from(arena.event_names) | st.sampled_from(odd) | st.text(max_size=30)


def well_formed(ack: Any) -> bool:
    if not isinstance(ack, dict) or len(ack) != 1:
        return False
    if "ok" in ack:
        return True
    error = ack.get("error")
    return (
        isinstance(error, dict)
        and set(error) == {"code", "message"}
        and isinstance(error["code"], str)
        and isinstance(error["message"], str)
        and bool(error["message"])
    )


def test_every_event_from_every_role_gets_one_well_formed_ack(arena: Arena) -> None:
    rss_before = rss_mb()

    @FUZZ
    @given(
        role=st.sampled_from(sorted(arena.sockets, key=lambda r: r.value)),
        name=event_names(arena),
        args=st.lists(payloads(arena), max_size=2),
    )
    def one_request(role: Role, name: str, args: list[Any]) -> None:
        ack = arena.loop.run(arena.sockets[role].call(name, *args, within_s=20))
        arena.sent[role] += 1
        assert well_formed(ack), (role, name, args, ack)
        assert ack.get("error", {}).get("code") != "internal", (role, name, args, ack)

    one_request()
    for role, raw in arena.sockets.items():
        assert raw.connected, role
        assert raw.acks and set(raw.acks.values()) == {1}, role  # exactly one ack per request
    assert set(arena.sent) == set(arena.sockets)
    assert arena.loop.run(_healthz(arena.server.url)) == 200
    assert rss_mb() - rss_before < RSS_GROWTH_LIMIT_MB


frames = st.one_of(
    st.text(max_size=200),
    st.builds(lambda body: "4" + body, st.text(max_size=200)),
    st.builds(lambda body: "42" + body, st.text(max_size=200)),
    st.builds(lambda value: "429" + json.dumps(value), json_values),
    st.builds(lambda n, body: f"4{n}" + body, st.integers(0, 9), st.text(max_size=50)),
)


def test_raw_frames_get_an_answer_or_a_close_and_never_a_traceback(
    arena: Arena, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    token = arena.server.token(Role.OUTLET, "outlet-frames")

    async def send(frame: str) -> None:
        raw = await RawSocket.open(arena.server.url)
        try:
            assert (await raw.authenticate(token)).startswith("40")
            await raw.send(frame)
            await raw.send('42999["consultation.cancel",{"consultation_id":"c-none"}]')
            try:
                await raw.ack(999, within_s=5)
            except AssertionError:  # closed: the frame was refused with a close
                pass
        finally:
            await raw.close()

    @FRAMES
    @given(frame=frames)
    def one_frame(frame: str) -> None:
        arena.loop.run(send(frame))

    one_frame()
    assert arena.loop.run(_healthz(arena.server.url)) == 200
    ours = {"signaling", "engineio", "socketio", "aiohttp", "rooms", "media", "web"}
    problems = [
        r
        for r in caplog.records
        if r.name.split(".")[0] in ours and (r.levelno >= logging.ERROR or r.exc_info)
    ]
    assert not problems, [(r.getMessage(), r.exc_info) for r in problems[:3]]


async def _healthz(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/healthz") as response:
        return response.status
