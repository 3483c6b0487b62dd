"""The ICE servers each connection gets: static STUN servers plus its own TURN credentials.

:class:`IceServerIssuer` mints TURN credentials when a connection is ready and sends fresh ones
(``session.ice_servers``) before they expire, for as long as the connection's token is valid.
Credentials are never logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from signaling.auth import Identity
from signaling.turn import TurnPolicy, refresh_delay

logger = logging.getLogger(__name__)

REFRESH_EVENT = "session.ice_servers"
ICE_TRANSPORT_POLICIES = ("all", "relay")

Emit = Callable[[str, dict[str, Any], str], Awaitable[None]]


class IceServerIssuer:
    """Hands out ICE servers per connection and keeps each connection's TURN credentials fresh."""

    def __init__(
        self,
        static_servers: Sequence[dict[str, str]],
        turn: TurnPolicy | None,
        transport_policy: str = "all",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if transport_policy not in ICE_TRANSPORT_POLICIES:
            raise ValueError(f"unknown ICE transport policy {transport_policy!r}")
        self._static = [dict(s) for s in static_servers]
        self._turn = turn
        self.transport_policy = transport_policy
        self._clock = clock
        self._refreshers: dict[str, asyncio.Task[None]] = {}

    def servers_for(self, identity: Identity) -> tuple[list[dict[str, Any]], int | None]:
        """The connection's ICE servers and when its TURN credentials expire (``None``: never)."""
        servers: list[dict[str, Any]] = [dict(s) for s in self._static]
        if self._turn is None:
            return servers, None
        credentials = self._turn.credentials(identity.subject, identity.expires_at, self._clock())
        servers.append(self._turn.ice_server(credentials))
        return servers, credentials.expires_at

    def ready_fields(self, sid: str, identity: Identity, emit: Emit) -> dict[str, Any]:
        """The ICE part of ``session.ready``; schedules the refresh for this connection."""
        servers, expires_at = self.servers_for(identity)
        if expires_at is not None:
            self._schedule(sid, identity, expires_at, emit)
        return {
            "ice_servers": servers,
            "ice_servers_expire_at": expires_at,
            "ice_transport_policy": self.transport_policy,
        }

    def forget(self, sid: str) -> None:
        """Stop refreshing a connection that went away."""
        task = self._refreshers.pop(sid, None)
        if task is not None:
            task.cancel()

    async def close(self) -> None:
        tasks = list(self._refreshers.values())
        self._refreshers.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _schedule(self, sid: str, identity: Identity, expires_at: int, emit: Emit) -> None:
        self.forget(sid)
        self._refreshers[sid] = asyncio.create_task(self._refresh(sid, identity, expires_at, emit))

    async def _refresh(self, sid: str, identity: Identity, expires_at: int, emit: Emit) -> None:
        # Credentials that already last as long as the token cannot be extended: the client
        # reconnects with a new token and gets new credentials in its next ``session.ready``.
        while expires_at < int(identity.expires_at):
            await asyncio.sleep(refresh_delay(expires_at, self._clock()))
            servers, renewed = self.servers_for(identity)
            if renewed is None or renewed <= expires_at:
                return
            expires_at = renewed
            try:
                await emit(REFRESH_EVENT, {"ice_servers": servers, "expires_at": expires_at}, sid)
            except Exception:
                logger.exception("ICE server refresh failed sid=%s", sid)
                return
            logger.info("TURN credentials renewed sid=%s expires_at=%d", sid, expires_at)
