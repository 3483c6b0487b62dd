"""Validated, authorised dispatch of client events to their handlers.

Every client event goes through :meth:`Dispatcher.dispatch`: size cap, role check, pydantic
validation, then the handler. Whatever goes wrong becomes an error acknowledgement to that
client only; the server log gets one line, never a traceback for a client's mistake.
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

logger = logging.getLogger(__name__)

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


class Dispatcher:
    """Routes client events to registered specs; unknown events get an error ack."""

    def __init__(
        self,
        identity_of: Callable[[str], Awaitable[Identity | None]],
        max_event_bytes: int,
        on_result: Callable[[str, str], None] = lambda event, outcome: None,
    ) -> None:
        self._identity_of = identity_of
        self._max_event_bytes = max_event_bytes
        self._specs: dict[str, EventSpec[Any]] = {}
        self._on_result = on_result

    def register(self, specs: Iterable[EventSpec[Any]]) -> None:
        for spec in specs:
            if spec.name in self._specs:
                raise ValueError(f"event {spec.name!r} registered twice")
            self._specs[spec.name] = spec

    @property
    def event_names(self) -> list[str]:
        return sorted(self._specs)

    async def dispatch(self, event_name: str, sid: str, args: tuple[Any, ...]) -> Ack:
        """Handle one event and return the ack payload (``{"ok": ...}`` or ``{"error": ...}``)."""
        identity = await self._identity_of(sid)
        outcome = "ok"
        try:
            if identity is None:
                raise ProtocolError("unauthenticated", "the connection has no valid identity")
            if identity.expires_at < time.time():
                raise ProtocolError(
                    "token_expired", "the token has expired; reconnect with a new one"
                )
            spec = self._specs.get(event_name)
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
            logger.info(
                "event refused event=%s sid=%s role=%s code=%s",
                event_name[:64],
                sid,
                identity.role.value if identity else "-",
                outcome,
            )
            return wire
        except Exception:
            outcome = "internal"
            logger.exception("event failed event=%s sid=%s", event_name[:64], sid)
            return error_payload("internal", "the server could not handle this request")
        finally:
            self._on_result(event_name if event_name in self._specs else "<unknown>", outcome)

    def _single_payload(self, args: tuple[Any, ...]) -> Any:
        if len(args) > 1:
            raise ProtocolError("bad_request", "send exactly one payload object per event")
        payload = args[0] if args else {}
        try:
            size = len(json.dumps(payload, separators=(",", ":")))
        except (TypeError, ValueError) as exc:
            raise ProtocolError("bad_request", "the payload is not JSON") from exc
        if size > self._max_event_bytes:
            raise payload_too_large(size, self._max_event_bytes)
        return payload
