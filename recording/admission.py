"""Whose media a recording may take: everyone but guests who have not acknowledged it."""

from __future__ import annotations

import asyncio

from rooms.models import Consultation
from rooms.roles import Role
from rooms.store import Store
from rooms.tasks import cancel_and_wait


class Admission:
    """Answers, per packet, whether a participant's media may be recorded.

    Roles come from the stored consultation; a participant not known yet (joined after the
    start) is looked up in the background and not recorded until then.
    """

    _REFRESH_INTERVAL_S = 0.5

    def __init__(self, consultation: Consultation, store: Store, acknowledged: set[str]) -> None:
        self._consultation_id = consultation.id
        self._store = store
        self._roles = {pid: p.role for pid, p in consultation.participants.items()}
        self._acknowledged = acknowledged
        self._refresh: asyncio.Task[None] | None = None
        self._refreshed_at = 0.0

    def admits(self, participant_id: str) -> bool:
        role = self._roles.get(participant_id)
        if role is None:
            self._refresh_soon()
            return False
        return role is not Role.GUEST or participant_id in self._acknowledged

    def _refresh_soon(self) -> None:
        loop = asyncio.get_running_loop()
        if self._refresh is not None and not self._refresh.done():
            return
        if loop.time() - self._refreshed_at < self._REFRESH_INTERVAL_S:
            return
        self._refreshed_at = loop.time()
        self._refresh = loop.create_task(
            self._load(), name=f"recording-roles-{self._consultation_id}"
        )

    async def _load(self) -> None:
        consultation = await self._store.get_consultation(self._consultation_id)
        if consultation is not None:
            self._roles = {pid: p.role for pid, p in consultation.participants.items()}

    async def close(self) -> None:
        await cancel_and_wait(self._refresh)
