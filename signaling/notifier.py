"""The consultation domain's :class:`rooms.notify.Notifier` over Socket.IO rooms.

Each connection joins a room for its subject, clinicians one per covered service, admins one
shared room. With ``AsyncRedisManager`` these emits reach clients on every server process.
"""

from __future__ import annotations

from typing import Any

import socketio

ADMINS_ROOM = "admins"


def subject_room(subject: str) -> str:
    return f"subject:{subject}"


def service_room(service: str) -> str:
    return f"service:{service}"


class SocketNotifier:
    """Emits domain events to Socket.IO rooms."""

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self._sio = sio

    async def to_subject(self, subject: str, event: str, payload: dict[str, Any]) -> None:
        await self._sio.emit(event, payload, room=subject_room(subject))

    async def to_service(self, service: str, event: str, payload: dict[str, Any]) -> None:
        await self._sio.emit(event, payload, room=service_room(service))

    async def to_admins(self, event: str, payload: dict[str, Any]) -> None:
        await self._sio.emit(event, payload, room=ADMINS_ROOM)
