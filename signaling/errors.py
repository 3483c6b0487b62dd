"""Wire errors: the one place that turns protocol and domain errors into ack payloads."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from rooms.errors import DomainError


class ProtocolError(Exception):
    """A request that breaks the wire contract (size, shape, unknown event, role)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def unknown_event(event: str) -> ProtocolError:
    return ProtocolError("unknown_event", f"no such event: {event[:64]!r}")


def payload_too_large(size: int, limit: int) -> ProtocolError:
    return ProtocolError(
        "payload_too_large", f"payload of {size} bytes exceeds the {limit} byte limit"
    )


def role_forbidden(event: str, role: str) -> ProtocolError:
    return ProtocolError("forbidden", f"role {role!r} may not send {event!r}")


def error_payload(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def to_wire(exc: Exception) -> dict[str, Any]:
    """Map a known error to ``{"error": {"code", "message"}}``; unknown ones become ``internal``."""
    if isinstance(exc, ProtocolError | DomainError):
        return error_payload(exc.code, exc.message)
    if isinstance(exc, ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'payload'}: {err['msg']}"
            for err in exc.errors()[:5]
        )
        return error_payload("bad_request", problems)
    return error_payload("internal", "the server could not handle this request")
