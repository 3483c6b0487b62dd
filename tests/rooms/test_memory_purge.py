"""The in-memory store forgets history after its retention: ended consultations and expired
invites go, open consultations and live invites stay (what lasts is in the records database)."""

from __future__ import annotations

import asyncio
import time

import pytest

from rooms import memory_store
from rooms.memory_store import MemoryStore
from rooms.models import ConsultationState, Invite
from tests.rooms.test_store_contract import consultation

RETENTION_S = 0.2


async def test_ended_consultations_are_dropped_after_retention() -> None:
    store = MemoryStore(ended_retention_s=RETENTION_S)
    for cid in ("c-open", "c-ended"):
        written = await store.put_consultation(consultation(cid), 0)
        assert written is not None
    ended = await store.get_consultation("c-ended")
    assert ended is not None
    ended.state = ConsultationState.ENDED
    assert await store.put_consultation(ended, ended.version) is not None
    assert await store.get_consultation("c-ended") is not None, "kept during the retention"

    await asyncio.sleep(RETENTION_S * 1.5)
    await store.put_consultation(consultation("c-new"), 0)  # any write sweeps

    assert await store.get_consultation("c-ended") is None
    assert await store.get_consultation("c-open") is not None
    assert {c.id for c in await store.open_consultations()} == {"c-open", "c-new"}


async def test_expired_invites_are_dropped_after_their_afterlife(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(memory_store, "INVITE_AFTERLIFE_S", RETENTION_S)
    store = MemoryStore()
    now = time.time()
    assert await store.put_invite(Invite("gone", "c-1", "dr-1", "parent", now, now), 5)
    assert await store.put_invite(Invite("live", "c-1", "dr-1", "parent", now, now + 600), 5)
    await asyncio.sleep(RETENTION_S * 1.5)
    assert await store.put_invite(Invite("new", "c-2", "dr-1", "parent", now, now + 600), 5)
    assert await store.get_invite("gone") is None
    assert await store.get_invite("live") is not None
