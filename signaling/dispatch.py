"""Validated, authorised dispatch of client events to their handlers.

Every client event goes through :meth:`Dispatcher.dispatch`: rate limit, identity, role check,
size cap (UTF-8 bytes), strict pydantic validation, then the handler. Whatever goes wrong becomes
an error acknowledgement to that client only; the server log gets at most a throttled line, never
a traceback for a client's mistake.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from rooms.errors import DomainError
from rooms.roles import Role
from signaling.auth import Identity
from signaling.errors import (
    ProtocolError,
    error_payload,
    payload_too_large,
    role_forbidden,
    to_wire,
    unknown_event,
)
from signaling.log_throttle import LogThrottle
from signaling.token_bucket import KeyedBuckets

logger = logging.getLogger(__name__)
_log = LogThrottle(logger)

# Names Socket.IO and its clients use for themselves: a client event may never carry one.
RESERVED_EVENTS = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "*", "message"}
    | {"newListener", "removeListener", "error", "ping", "pong"}
)

M = TypeVar("M", bound=BaseModel)
Ack = dict[str, Any]


@dataclass(frozen=True)
class Caller:
    """The connection an event came from."""

    sid: str
    identity: Identity


Handler = Callable[[Caller, M], Awaitable[Ack | None]]


@dataclass(frozen=True)
class EventSpec(Generic[M]):
    """One client event: its name, payload model, the roles that may send it, and its handler."""

    name: str
    model: type[M]
    roles: frozenset[Role]
    handler: Handler[M]


def event(name: str, model: type[M], roles: Iterable[Role], handler: Handler[M]) -> EventSpec[M]:
    """Shorthand for declaring an :class:`EventSpec`."""
    return EventSpec(name, model, frozenset(roles), handler)


@dataclass(frozen=True)
class EventLimits:
    """Per-connection limits: payload size in UTF-8 bytes and a token bucket of events."""

    max_event_bytes: int = 64 * 1024
    events_per_s: float = 20.0
    event_burst: int = 60


class Dispatcher:
    """Routes client events to registered specs; unknown events get an error ack."""

    def __init__(
        self,
        identity_of: Callable[[str], Awaitable[Identity | None]],
        limits: EventLimits,
        on_result: Callable[[str, str], None] = lambda event, outcome: None,
    ) -> None:
        self._identity_of = identity_of
        self._limits = limits
        self._buckets: KeyedBuckets[str] = KeyedBuckets(
            limits.events_per_s, limits.event_burst, max_keys=1_000_000
        )
        self._specs: dict[str, EventSpec[Any]] = {}
        self._on_result = on_result

    def register(self, specs: Iterable[EventSpec[Any]]) -> None:
        """Add events; names must be new and not reserved, and every model strict."""
        for spec in specs:
            if spec.name in self._specs or spec.name in RESERVED_EVENTS:
                raise ValueError(f"event {spec.name!r} is registered twice or reserved")
            if spec.model.model_config.get("strict") is not True:
                raise ValueError(f"the payload model of {spec.name!r} must be strict")
            self._specs[spec.name] = spec

    def forget(self, sid: str) -> None:
        """The connection is gone: drop its rate limit state."""
        self._buckets.forget(sid)

    @property
    def event_names(self) -> list[str]:
        return sorted(self._specs)

    @property
    def specs(self) -> list[EventSpec[Any]]:
        return [self._specs[name] for name in self.event_names]

    async def dispatch(self, event_name: str, sid: str, args: tuple[Any, ...]) -> Ack:
        """Handle one event and return the ack payload (``{"ok": ...}`` or ``{"error": ...}``)."""
        identity: Identity | None = None
        outcome = "ok"
        try:
            if not self._buckets.take(sid):
                raise ProtocolError(
                    "rate_limited",
                    f"more than {self._limits.events_per_s:g} events per second; slow down",
                )
            identity = await self._identity_of(sid)
            if identity is None:
                raise ProtocolError("unauthenticated", "the connection has no valid identity")
            if identity.expires_at < time.time():
                raise ProtocolError(
                    "token_expired", "the token has expired; reconnect with a new one"
                )
            spec = self._specs.get(event_name) if isinstance(event_name, str) else None
            if spec is None:
                raise unknown_event(event_name)
            if identity.role not in spec.roles:
                raise role_forbidden(event_name, identity.role.value)
            payload = self._single_payload(args)
            message = spec.model.model_validate(payload)
            result = await spec.handler(Caller(sid, identity), message)
            return result if result is not None else {"ok": True}
        except (ProtocolError, DomainError, ValidationError) as exc:
            wire = to_wire(exc)
            outcome = wire["error"]["code"]
            _log.log(
                logging.INFO,
                f"refused:{outcome}",
                "event refused event=%r sid=%s role=%s code=%s",
                str(event_name)[:64],
                sid,
                identity.role.value if identity else "-",
                outcome,
            )
            return wire
        except Exception:
            outcome = "internal"
            logger.exception("event failed event=%r sid=%s", str(event_name)[:64], sid)
            return error_payload("internal", "the server could not handle this request")
        finally:
            self._on_result(event_name if event_name in self._specs else "<unknown>", outcome)

    def _single_payload(self, args: tuple[Any, ...]) -> Any:
        if len(args) > 1:
            raise ProtocolError("bad_request", "send exactly one payload object per event")
        payload = args[0] if args else {}
        try:
            text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
            size = len(text.encode("utf-8"))
        except (TypeError, ValueError) as exc:  # UnicodeEncodeError: a lone surrogate
            raise ProtocolError("bad_request", "the payload is not JSON text") from exc
        if size > self._limits.max_event_bytes:
            raise payload_too_large(size, self._limits.max_event_bytes)
        return payload
