"""The Socket.IO server with the transport-level guards the protocol needs.

* :class:`JsonOnlyPacket` is the server's packet class (python-socketio's ``serializer`` hook). It
  reads the packet type first and refuses binary packets (types 5 and 6) before their attachment
  count is parsed, so a packet claiming a million attachments costs nothing. It also refuses
  packet types a client never sends, frames that do not parse, and events that are not
  ``[name, payload...]`` or that use a reserved name (``connect``, ``disconnect``, ``*``...): such
  a name never reaches the server's own handlers.
* :class:`GuardedServer` (a small subclass of ``socketio.AsyncServer``) caps connections in total
  and per source address, closes connections that have not authenticated within
  ``auth_timeout_s`` or whose authentication was refused, refuses a second ``CONNECT`` on a
  connection that already has an identity, and answers refused frames: an error ack for an
  event the client can correct, closing the connection for binary or malformed frames. Every
  refusal is reported to ``on_refusal(reason)`` (a metric) and logged on a throttled line.

The subclass wraps three engine.io-level entry points of ``socketio.AsyncServer``
(``_handle_eio_connect``, ``_handle_eio_message``, ``_handle_eio_disconnect``) and
``_handle_connect``; ``tests/signaling/test_transport_guards.py`` checks they still exist with the
expected signatures, so an upgrade that renames them fails loudly.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import socketio
from socketio import packet

from signaling.dispatch import RESERVED_EVENTS
from signaling.errors import error_payload
from signaling.log_throttle import LogThrottle

logger = logging.getLogger(__name__)
_log = LogThrottle(logger)

_CLIENT_PACKET_TYPES = frozenset({packet.CONNECT, packet.DISCONNECT, packet.EVENT, packet.ACK})
_BINARY_TYPE_CHARS = frozenset({str(packet.BINARY_EVENT), str(packet.BINARY_ACK)})
_NAMESPACE = "/"
_ROOT = Path(__file__).resolve().parent.parent
_PROJECT_DIRS = tuple(str(_ROOT / name) + "/" for name in ("signaling", "rooms", "media", "web"))


class RefusedFrame(ValueError):
    """A client frame the server will not handle; ``close`` says whether to drop the connection."""

    def __init__(
        self,
        code: str,
        message: str,
        close: bool,
        packet_id: int | None = None,
        namespace: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.close = close
        self.packet_id = packet_id
        self.namespace = namespace


class JsonOnlyPacket(packet.Packet):  # type: ignore[misc]
    """Socket.IO packets as JSON text only, checked before anything is built from them."""

    def decode(self, encoded_packet: Any) -> int:
        if not isinstance(encoded_packet, str):
            raise RefusedFrame("binary_refused", "binary frames are not accepted", close=True)
        if encoded_packet[:1] in _BINARY_TYPE_CHARS:
            raise RefusedFrame(
                "binary_refused", "binary Socket.IO packets are not accepted: send JSON", True
            )
        try:
            attachments = int(super().decode(encoded_packet))
        except Exception as exc:  # the parser raises ValueError, RecursionError, ...
            problem = f"the frame does not parse ({type(exc).__name__})"
            raise RefusedFrame("malformed", problem, close=True) from None
        if self.packet_type not in _CLIENT_PACKET_TYPES:
            problem = f"packet type {self.packet_type!r} is not accepted"
            raise RefusedFrame("malformed", problem, close=True)
        if self.packet_type == packet.EVENT:
            self._check_event()
        return attachments

    def _check_event(self) -> None:
        data = self.data
        if not isinstance(data, list) or not data or not isinstance(data[0], str):
            raise RefusedFrame(
                "bad_request",
                "an event is [name, payload] with a text name",
                close=False,
                packet_id=self.id,
                namespace=self.namespace,
            )
        if data[0] in RESERVED_EVENTS:
            raise RefusedFrame(
                "reserved_event",
                f"{data[0]!r} is a reserved name and cannot be sent as an event",
                close=False,
                packet_id=self.id,
                namespace=self.namespace,
            )


class _EngineIoFrameErrors(logging.Filter):
    """Engine.IO parses its own frames before any hook runs, and a garbage frame ends in a
    traceback logged by engine.io or aiohttp (the connection is dropped either way). Those
    records become one throttled line without the traceback; any other error is left alone."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.exc_info or not _raised_inside_engineio(record.exc_info[2]):
            return True
        _, error, _ = record.exc_info
        _log.log(
            logging.INFO,
            "engineio_frame",
            "malformed engine.io frame dropped the connection (%s: %s)",
            type(error).__name__,
            str(error)[:80],
        )
        return False


def _raised_inside_engineio(trace: Any) -> bool:
    """Whether the error came from engine.io's own frame handling, not from this project's code
    that engine.io called (those errors keep their traceback)."""
    files: list[str] = []
    while trace is not None:
        files.append(trace.tb_frame.f_code.co_filename)
        trace = trace.tb_next
    after_engineio = False
    for name in files:
        if "/engineio/" in name:
            after_engineio = True
        elif after_engineio and name.startswith(_PROJECT_DIRS):
            return False
    return after_engineio


def guard_engineio_logs() -> None:
    """Install the filter on the loggers engine.io's parse errors reach (once per process)."""
    for name in ("engineio.server", "aiohttp.server"):
        target = logging.getLogger(name)
        if not any(isinstance(f, _EngineIoFrameErrors) for f in target.filters):
            target.addFilter(_EngineIoFrameErrors())


@dataclass(frozen=True)
class ConnectionLimits:
    """How many connections the server takes, and how long one may stay unauthenticated."""

    max_connections: int = 2000
    max_connections_per_address: int = 50
    auth_timeout_s: float = 10.0


class GuardedServer(socketio.AsyncServer):  # type: ignore[misc]
    """``socketio.AsyncServer`` with connection caps, an authentication timeout and frame checks."""

    def __init__(
        self,
        limits: ConnectionLimits,
        on_refusal: Callable[[str], None] = lambda reason: None,
        **kwargs: Any,
    ) -> None:
        super().__init__(serializer=JsonOnlyPacket, **kwargs)
        guard_engineio_logs()
        self._limits = limits
        self._on_refusal = on_refusal
        self._address_of: dict[str, str] = {}
        self._per_address: Counter[str] = Counter()
        self._auth_timers: dict[str, asyncio.Task[None]] = {}
        self._authenticated: set[str] = set()
        self._closing: set[asyncio.Task[None]] = set()

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        request = environ.get("aiohttp.request")
        address = str(getattr(request, "remote", None) or "-")
        if len(self._address_of) >= self._limits.max_connections:
            return self._refuse_connection("too_many_connections", "the server is full", address)
        if self._per_address[address] >= self._limits.max_connections_per_address:
            return self._refuse_connection(
                "too_many_connections_from_address",
                "too many connections from this address",
                address,
            )
        self._address_of[eio_sid] = address
        self._per_address[address] += 1
        self._auth_timers[eio_sid] = asyncio.create_task(self._close_unless_authenticated(eio_sid))
        await super()._handle_eio_connect(eio_sid, environ)
        return None

    def _refuse_connection(self, reason: str, message: str, address: str) -> dict[str, Any]:
        self._refused(reason, "connection refused reason=%s address=%s", reason, address)
        return error_payload(reason, message)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        socket = self.eio.sockets.get(eio_sid)
        if socket is not None:
            # End engine.io's writer, which then closes the websocket: by itself engine.io only
            # sends a close packet and waits for the client to hang up.
            await socket.queue.put(None)
        timer = self._auth_timers.pop(eio_sid, None)
        if timer is not None:
            timer.cancel()
        self._authenticated.discard(eio_sid)
        address = self._address_of.pop(eio_sid, None)
        if address is not None:
            self._per_address[address] -= 1
            if self._per_address[address] <= 0:
                del self._per_address[address]
        await super()._handle_eio_disconnect(eio_sid, reason)

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        try:
            if not isinstance(data, str) or not data:
                # python-socketio would take an empty frame for an event without data
                raise RefusedFrame("malformed", "an empty or binary frame is not a packet", True)
            await super()._handle_eio_message(eio_sid, data)
        except RefusedFrame as refusal:
            await self._answer_refusal(eio_sid, refusal)
            return
        if (
            eio_sid in self._authenticated
            and self.manager.sid_from_eio_sid(eio_sid, _NAMESPACE) is None
        ):
            # the client left the namespace but kept the socket: nothing more to serve on it
            await self._close(eio_sid)

    async def _handle_connect(self, eio_sid: str, namespace: str | None, data: Any) -> None:
        namespace = namespace or _NAMESPACE
        if self.manager.sid_from_eio_sid(eio_sid, namespace) is not None:
            raise RefusedFrame("already_connected", "this connection already has an identity", True)
        await super()._handle_connect(eio_sid, namespace, data)
        if self.manager.sid_from_eio_sid(eio_sid, namespace) is None:
            self._refused("auth_refused", "closing a refused connection eio_sid=%s", eio_sid)
            # after this handler: the CONNECT_ERROR packet goes out first
            closing = asyncio.create_task(self._close(eio_sid))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)
            return
        self._authenticated.add(eio_sid)
        timer = self._auth_timers.pop(eio_sid, None)
        if timer is not None:
            timer.cancel()

    async def _answer_refusal(self, eio_sid: str, refusal: RefusedFrame) -> None:
        self._refused(
            refusal.code, "frame refused code=%s eio_sid=%s: %s", refusal.code, eio_sid, refusal
        )
        if refusal.close:
            await self._close(eio_sid)
            return
        if refusal.packet_id is not None:
            ack = self.packet_class(
                packet.ACK,
                namespace=refusal.namespace or _NAMESPACE,
                id=refusal.packet_id,
                data=[error_payload(refusal.code, refusal.message)],
            )
            await self.eio.send(eio_sid, ack.encode())

    async def _close_unless_authenticated(self, eio_sid: str) -> None:
        await asyncio.sleep(self._limits.auth_timeout_s)
        self._auth_timers.pop(eio_sid, None)
        if self.manager.sid_from_eio_sid(eio_sid, _NAMESPACE) is not None:
            return
        self._refused("auth_timeout", "closing an unauthenticated connection eio_sid=%s", eio_sid)
        error = self.packet_class(
            packet.CONNECT_ERROR,
            namespace=_NAMESPACE,
            data={
                "message": f"not authenticated within {self._limits.auth_timeout_s:g} s",
                "data": {"code": "auth_timeout"},
            },
        )
        try:
            await self.eio.send(eio_sid, error.encode())
        except Exception:  # the connection may have gone meanwhile
            return
        await self._close(eio_sid)

    async def _close(self, eio_sid: str) -> None:
        await self.eio.disconnect(eio_sid)

    def _refused(self, reason: str, message: str, *args: object) -> None:
        self._on_refusal(reason)
        _log.log(logging.INFO, reason, message, *args)
