"""Janus as a reference relay for ``bench relay --against janus``: its configuration, its
process, and the few Janus API calls the load clients make over its WebSocket transport.

The configuration lives in a temporary directory: Janus loads plugins and transports from
folders made there holding a link to the echotest plugin and the WebSocket transport only, binds
the transport to 127.0.0.1 and gathers ICE candidates on one given address only (127.0.0.2 in the
benchmark's private network namespace, ``benchmarks/_netns.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from aiohttp import ClientSession, ClientWebSocketResponse, WSMsgType, WSServerHandshakeError

from benchmarks._processes import spawn
from rooms.tasks import within

JANUS_BINARY = "/usr/bin/janus"
JANUS_LIBRARIES = Path("/usr/lib/x86_64-linux-gnu/janus")
ECHOTEST = "janus.plugin.echotest"
_PLUGIN_FILE = "libjanus_echotest.so"
_TRANSPORT_FILE = "libjanus_websockets.so"
SUBPROTOCOL = "janus-protocol"


def janus_missing(binary: str = JANUS_BINARY, libraries: Path = JANUS_LIBRARIES) -> str | None:
    """Why Janus cannot run here (``None`` when it can): the binary, the plugin or the transport
    is absent."""
    needed = [
        Path(binary),
        libraries / "plugins" / _PLUGIN_FILE,
        libraries / "transports" / _TRANSPORT_FILE,
    ]
    for path in needed:
        if not path.exists():
            return f"{path} not found (Debian: apt-get install janus)"
    return None


def _jcfg(sections: Mapping[str, Mapping[str, str | int | bool]]) -> str:
    """libconfig text, the format of Janus's ``.jcfg`` files."""

    def value(item: str | int | bool) -> str:
        if isinstance(item, bool):
            return "true" if item else "false"
        if isinstance(item, int):
            return str(item)
        return json.dumps(item)  # a JSON string is a valid libconfig string

    blocks = []
    for name, settings in sections.items():
        lines = [f"\t{key} = {value(item)}" for key, item in settings.items()]
        blocks.append(name + ": {\n" + "\n".join(lines) + ("\n" if lines else "") + "}\n")
    return "\n".join(blocks)


def write_config(
    workdir: Path, ws_port: int, ice_address: str, libraries: Path = JANUS_LIBRARIES
) -> Path:
    """Write Janus's configuration under ``workdir``; returns the main configuration file.

    ICE gathers on ``ice_address`` only: Janus 1.1 never gathers on a loopback interface
    (``src/ice.c`` skips ``IFF_LOOPBACK``), so ``lo``'s 127.0.0.1 cannot be used; the benchmark
    passes a loopback address held by a non-loopback interface of its private namespace. With
    nothing enforced libnice would gather on every other interface.

    Only the echotest plugin and the WebSocket transport are linked into the folders Janus
    loads from, so no other plugin, transport, event handler or logger starts.
    """
    folders = {name: workdir / name for name in ("plugins", "transports", "events", "loggers")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    for kind, file in (("plugins", _PLUGIN_FILE), ("transports", _TRANSPORT_FILE)):
        link = folders[kind] / file
        if not link.exists():
            link.symlink_to(libraries / kind / file)
    main = workdir / "janus.jcfg"
    main.write_text(
        _jcfg(
            {
                "general": {
                    "configs_folder": str(workdir),
                    "plugins_folder": str(folders["plugins"]),
                    "transports_folder": str(folders["transports"]),
                    "events_folder": str(folders["events"]),
                    "loggers_folder": str(folders["loggers"]),
                    "debug_level": 3,
                    "session_timeout": 60,
                    "server_name": "bench-relay",
                },
                "certificates": {},
                "media": {"ipv6": False},
                "nat": {"nice_debug": False, "ice_enforce_list": ice_address, "ignore_mdns": True},
                "plugins": {},
                "transports": {},
                "events": {"broadcast": False},
                "loggers": {},
            }
        )
    )
    (workdir / "janus.transport.websockets.jcfg").write_text(
        _jcfg(
            {
                "general": {
                    "json": "compact",
                    "ws": True,
                    "ws_port": ws_port,
                    "ws_ip": "127.0.0.1",
                    "wss": False,
                },
                "admin": {"admin_ws": False, "admin_wss": False},
            }
        )
    )
    (workdir / "janus.plugin.echotest.jcfg").write_text(_jcfg({"general": {"events": False}}))
    return main


def start_janus(workdir: Path, config: Path, binary: str = JANUS_BINARY) -> subprocess.Popen[bytes]:
    """Start Janus on ``config``; its log goes to ``workdir/janus.log``."""
    return spawn(
        [binary, "--config", str(config), "--configs-folder", str(workdir), "--disable-colors"],
        {"PATH": "/usr/bin:/bin"},
        workdir / "janus.log",
    )


def stop_janus(process: subprocess.Popen[bytes]) -> None:
    """Stop Janus by its PID: SIGTERM, then SIGKILL after 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class JanusError(Exception):
    """Janus (or its plugin) refused a request."""


class JsonSocket(Protocol):
    """What the API client needs of a WebSocket."""

    async def send_str(self, data: str) -> None: ...

    async def receive_str(self) -> str: ...


@dataclass(frozen=True)
class Reply:
    """Janus's final reply to one request; ``jsep`` when it carries a session description."""

    message: dict[str, Any]

    @property
    def jsep(self) -> dict[str, Any] | None:
        jsep = self.message.get("jsep")
        return jsep if isinstance(jsep, dict) else None


def reply_outcome(message: Mapping[str, Any], ack_is_final: bool) -> Reply | None:
    """Classify one message answering a request: ``None`` while more is to come (an ``ack``
    before a plugin's asynchronous event), a ``Reply`` when done; raises ``JanusError`` for an
    error of Janus or of the plugin."""
    kind = message.get("janus")
    if kind == "error":
        error = message.get("error", {})
        raise JanusError(f"janus error {error.get('code')}: {error.get('reason')}")
    if kind == "ack" and not ack_is_final:
        return None
    data = message.get("plugindata", {}).get("data", {})
    if isinstance(data, dict) and "error" in data:
        raise JanusError(f"plugin error {data.get('error_code')}: {data['error']}")
    return Reply(dict(message))


class JanusApi:
    """One Janus session with one plugin handle over one WebSocket.

    Requests are matched to replies by transaction; messages without one (``webrtcup``,
    ``media``, ``hangup``, ``slowlink``) are kept in ``events``.
    """

    def __init__(self, socket: JsonSocket) -> None:
        self._socket = socket
        self._transactions = itertools.count(1)
        self._pending: dict[str, tuple[asyncio.Future[Reply], bool]] = {}
        self.events: list[dict[str, Any]] = []
        self.session_id: int | None = None
        self.handle_id: int | None = None
        self._reader: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            while True:
                self.dispatch(json.loads(await self._socket.receive_str()))
        except Exception as error:  # the socket closed or sent garbage: fail what waits
            for future, _ in self._pending.values():
                if not future.done():
                    future.set_exception(JanusError(f"connection to Janus lost: {error!r}"))
            self._pending.clear()

    def dispatch(self, message: dict[str, Any]) -> None:
        """Route one incoming message to the request waiting for it, or to ``events``."""
        transaction = message.get("transaction")
        waiting = self._pending.get(transaction) if isinstance(transaction, str) else None
        if waiting is None:
            self.events.append(message)
            return
        future, ack_is_final = waiting
        try:
            reply = reply_outcome(message, ack_is_final)
        except JanusError as error:
            del self._pending[str(transaction)]
            if not future.done():
                future.set_exception(error)
            return
        if reply is not None:
            del self._pending[str(transaction)]
            if not future.done():
                future.set_result(reply)

    async def request(
        self, body: dict[str, Any], ack_is_final: bool = False, timeout_s: float = 15.0
    ) -> Reply:
        """Send one API request (session and handle ids added) and wait for its final reply."""
        transaction = f"t{next(self._transactions)}"
        message = {**body, "transaction": transaction}
        if self.session_id is not None:
            message["session_id"] = self.session_id
        if self.handle_id is not None and body["janus"] in ("message", "trickle", "detach"):
            message["handle_id"] = self.handle_id
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[transaction] = (future, ack_is_final)
        await self._socket.send_str(json.dumps(message))
        try:
            return await within(future, timeout_s)
        finally:
            self._pending.pop(transaction, None)

    async def create_session(self) -> int:
        reply = await self.request({"janus": "create"})
        self.session_id = int(reply.message["data"]["id"])
        return self.session_id

    async def attach(self, plugin: str = ECHOTEST) -> int:
        reply = await self.request({"janus": "attach", "plugin": plugin})
        self.handle_id = int(reply.message["data"]["id"])
        return self.handle_id

    async def offer(self, sdp: str, body: dict[str, Any]) -> str:
        """Send an offer (complete, not trickled) with ``body``; returns the answer's SDP."""
        reply = await self.request(
            {"janus": "message", "body": body, "jsep": {"type": "offer", "sdp": sdp}}
        )
        jsep = reply.jsep
        if jsep is None or jsep.get("type") != "answer":
            raise JanusError(f"no answer in the plugin's reply: {reply.message.get('janus')}")
        return str(jsep["sdp"])

    async def keepalive(self) -> None:
        await self.request({"janus": "keepalive"}, ack_is_final=True)

    async def close(self) -> None:
        """Destroy the session if it was created, then stop reading."""
        if self.session_id is not None:
            with contextlib.suppress(JanusError, TimeoutError, ConnectionError):
                await self.request({"janus": "destroy"}, timeout_s=5)
            self.session_id = None
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)


class WebSocketAdapter:
    """aiohttp's client WebSocket as a ``JsonSocket``."""

    def __init__(self, socket: ClientWebSocketResponse) -> None:
        self.socket = socket

    async def send_str(self, data: str) -> None:
        await self.socket.send_str(data)

    async def receive_str(self) -> str:
        message = await self.socket.receive()
        if message.type != WSMsgType.TEXT:
            raise ConnectionError(f"Janus WebSocket: {message.type.name}")
        return str(message.data)


async def connect(session: ClientSession, url: str) -> ClientWebSocketResponse:
    """A WebSocket to Janus's API (its subprotocol is required)."""
    return await session.ws_connect(url, protocols=(SUBPROTOCOL,), max_msg_size=1 << 20)


async def wait_ready(
    session: ClientSession, url: str, process: subprocess.Popen[bytes], within_s: float = 30
) -> None:
    """Wait until Janus's WebSocket accepts a connection; give up if it exits or time runs
    out."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Janus exited with {process.returncode}")
        with contextlib.suppress(OSError, WSServerHandshakeError):
            socket = await connect(session, url)
            await socket.close()
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"Janus did not accept {url} within {within_s:.0f} s")
