"""The python-socketio server: authenticated connections and one entry point for every event."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Protocol

import socketio

from rooms.redis_connection import RedisOptions, brief, socketio_redis_options
from signaling.auth import AuthError, Identity, TokenAuthority
from signaling.dispatch import Dispatcher, EventLimits, EventSpec
from signaling.guarded_server import ConnectionLimits, GuardedServer
from signaling.log_throttle import LogThrottle

logger = logging.getLogger(__name__)
_log = LogThrottle(logger)

_IDENTITY = "identity"
# Socket.IO frames above this are dropped by engine.io itself; between the per-event cap and this
# limit the client gets a clear ``payload_too_large`` ack instead.
_TRANSPORT_HEADROOM = 4
_MANAGER_CONNECT_TIMEOUT_S = 2.0
# The manager's listener retries this often at first, then at most every _LISTEN_BACKOFF_MAX_S.
_LISTEN_BACKOFF_S = 0.2
_LISTEN_BACKOFF_MAX_S = 2.0


EventFilter = Callable[[Iterable[EventSpec[Any]]], list[EventSpec[Any]]]


class ConnectionListener(Protocol):
    """Told when an authenticated client connects or its connection goes away."""

    async def on_connect(self, sid: str, identity: Identity) -> None: ...

    async def on_disconnect(self, sid: str, identity: Identity) -> None: ...


def create_redis_manager(url: str, options: RedisOptions) -> socketio.AsyncRedisManager:
    """python-socketio's Redis manager on ``url``, whose listener comes back within seconds.

    Its own listener waits twice as long after each failed reconnect, up to a minute: after a
    Redis restart or a Sentinel failover, emits between processes would stay lost that long.
    This one's retry loop (the manager calls it to receive) caps the wait.
    """
    manager = socketio.AsyncRedisManager(
        url, redis_options=socketio_redis_options(url, options, _MANAGER_CONNECT_TIMEOUT_S)
    )
    manager._redis_listen_with_retries = functools.partial(_listen_with_capped_backoff, manager)
    return manager


async def _listen_with_capped_backoff(manager: Any) -> AsyncIterator[Any]:
    """Subscribe the manager to its channel and yield what arrives; after any loss, close the
    broken subscription and subscribe again (0.2 s, doubling to 2 s at most)."""
    backoff = _LISTEN_BACKOFF_S
    while True:
        try:
            manager._redis_connect()
            await manager.pubsub.subscribe(manager.channel)
            backoff = _LISTEN_BACKOFF_S
            async for message in manager.pubsub.listen():
                yield message
        except Exception as exc:  # any loss of the subscription: subscribe again
            logger.warning(
                "socket.io manager lost redis, retrying in %.1fs: %s", backoff, brief(exc)
            )
            with contextlib.suppress(Exception):
                await manager.pubsub.aclose()
            await asyncio.sleep(backoff)
            backoff = min(_LISTEN_BACKOFF_MAX_S, backoff * 2)


def create_socket_server(
    redis_url: str | None,
    redis_options: RedisOptions,
    max_event_bytes: int,
    liveness_timeout_s: float,
    limits: ConnectionLimits,
    allowed_origins: tuple[str, ...] = (),
    on_refusal: Callable[[str], None] = lambda reason: None,
    websocket_only: bool = False,
) -> GuardedServer:
    """Build the Socket.IO server; with Redis (one server or through Sentinel, with
    ``redis_options``), emits are shared between server processes.

    Engine.IO pings every ``liveness_timeout_s / 2`` and gives up after as long again, so a
    connection lost without a goodbye (network loss) is noticed within ``liveness_timeout_s``
    instead of engine.io's default ~45 s. A browser's ``Origin`` must be one of
    ``allowed_origins``; without any, the server's own origin (its ``Host`` header, or the
    ``X-Forwarded-Proto``/``-Host`` a reverse proxy sets) is the only one allowed.
    ``websocket_only`` refuses long-polling: with several processes behind one port, each
    connection must stay on the process that accepted it, which only a websocket guarantees.
    """
    manager = create_redis_manager(redis_url, redis_options) if redis_url else None
    half = max(1.0, liveness_timeout_s / 2)
    return GuardedServer(
        limits,
        on_refusal,
        ping_interval=half,
        ping_timeout=half,
        async_mode="aiohttp",
        client_manager=manager,
        transports=["websocket"] if websocket_only else ["polling", "websocket"],
        max_http_buffer_size=max_event_bytes * _TRANSPORT_HEADROOM,
        # None is engine.io's same-origin check; an empty list would switch the check off.
        cors_allowed_origins=list(allowed_origins) or None,
        logger=False,
        engineio_logger=False,
    )


class SignalingGateway:
    """Authenticates connections and hands every event to the :class:`Dispatcher`."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        authority: TokenAuthority,
        limits: EventLimits,
        on_event_result: Any = None,
    ) -> None:
        self.sio = sio
        self._authority = authority
        self._listeners: list[ConnectionListener] = []
        self._event_filters: list[EventFilter] = []
        self.dispatcher = Dispatcher(
            self.identity_of,
            limits,
            **({"on_result": on_event_result} if on_event_result else {}),
        )
        sio.on("connect", self._on_connect)
        sio.on("disconnect", self._on_disconnect)
        sio.on("*", self._on_any_event)

    def add_events(self, specs: Iterable[EventSpec[Any]]) -> None:
        """Register events, each passed through the event filters first."""
        for event_filter in self._event_filters:
            specs = event_filter(specs)
        self.dispatcher.register(specs)

    def add_event_filter(self, event_filter: EventFilter) -> None:
        """Wrap the handlers of events registered from now on (a cluster runs media requests on
        the consultation's pinned node this way)."""
        self._event_filters.append(event_filter)

    def add_listener(self, listener: ConnectionListener) -> None:
        self._listeners.append(listener)

    async def identity_of(self, sid: str) -> Identity | None:
        try:
            session = await self.sio.get_session(sid)
        except KeyError:
            return None
        identity = session.get(_IDENTITY)
        return identity if isinstance(identity, Identity) else None

    async def _on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        if await self.identity_of(sid) is not None:
            raise socketio.exceptions.ConnectionRefusedError(
                "this connection already has an identity", {"code": "already_connected"}
            )
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            identity = self._authority.verify(token)
        except AuthError as exc:
            _log.log(logging.INFO, exc.code, "authentication refused sid=%s code=%s", sid, exc.code)
            raise socketio.exceptions.ConnectionRefusedError(
                exc.message, {"code": exc.code}
            ) from None
        await self.sio.save_session(sid, {_IDENTITY: identity})
        logger.info(
            "connected sid=%s role=%s subject=%s", sid, identity.role.value, identity.subject
        )
        for listener in self._listeners:
            await listener.on_connect(sid, identity)

    async def _on_disconnect(self, sid: str, reason: Any = None) -> None:
        self.dispatcher.forget(sid)
        identity = await self.identity_of(sid)
        if identity is None:
            return
        logger.info(
            "disconnected sid=%s role=%s subject=%s", sid, identity.role.value, identity.subject
        )
        for listener in self._listeners:
            try:
                await listener.on_disconnect(sid, identity)
            except Exception:
                logger.exception("disconnect listener failed sid=%s", sid)

    async def _on_any_event(self, event_name: str, sid: str, *args: Any) -> dict[str, Any]:
        return await self.dispatcher.dispatch(event_name, sid, args)
