"""One behaviour contract for every live-state store backend (memory and Redis)."""

from __future__ import annotations

import asyncio
import time

import pytest

from rooms.models import (
    ClinicianPresence,
    Consent,
    Consultation,
    ConsultationState,
    Invite,
    Participant,
    PresenceStatus,
)
from rooms.roles import Role
from rooms.store import Store, create_store


def presence(clinician_id: str, status: PresenceStatus) -> ClinicianPresence:
    return ClinicianPresence(
        clinician_id, Role.SPECIALIST, "Dr", status, ("ophthalmology",), True, 1.0, 1.0
    )


def consultation(cid: str = "c-1", **changes: object) -> Consultation:
    now = time.time()
    c = Consultation(
        id=cid,
        service="ophthalmology",
        outlet_id="outlet-1",
        patient_ref="P-1",
        guardian_present=True,
        urgent=False,
        appointment_at=None,
        created_at=now,
        queued_at=now,
        participants={"outlet-1": Participant("outlet-1", Role.OUTLET, "Outlet", connected=True)},
    )
    for key, value in changes.items():
        setattr(c, key, value)
    return c


async def test_consultation_round_trip_keeps_every_field(store: Store) -> None:
    original = consultation(
        urgent=True,
        appointment_at=1_800_000_000.5,
        declined_by=["dr-x"],
        consent=Consent("outlet-1", 1.5, "outlet-1", "recording"),
        notes="n",
    )
    written = await store.put_consultation(original, 0)
    assert written is not None and written.version == 1
    loaded = await store.get_consultation("c-1")
    assert loaded is not None
    assert loaded.to_dict() == {**original.to_dict(), "version": 1}
    assert await store.get_consultation("c-missing") is None


async def test_compare_and_set_refuses_stale_and_duplicate_writes(store: Store) -> None:
    first = await store.put_consultation(consultation(), 0)
    assert first is not None
    assert await store.put_consultation(consultation(), 0) is None, "create must not overwrite"
    changed = first.copy()
    changed.state = ConsultationState.OFFERED
    assert await store.put_consultation(changed, 1) is not None
    stale = first.copy()
    stale.state = ConsultationState.ACTIVE
    assert await store.put_consultation(stale, 1) is None
    loaded = await store.get_consultation("c-1")
    assert loaded is not None and loaded.state is ConsultationState.OFFERED and loaded.version == 2
    assert await store.put_consultation(consultation("c-new"), 3) is None, "missing needs version 0"


async def test_concurrent_writers_on_one_version_exactly_one_wins(store: Store) -> None:
    base = await store.put_consultation(consultation(), 0)
    assert base is not None

    async def claim(clinician: str) -> bool:
        mine = base.copy()
        mine.state = ConsultationState.ACTIVE
        mine.clinician_id = clinician
        return await store.put_consultation(mine, base.version) is not None

    results = await asyncio.gather(*(claim(f"dr-{i}") for i in range(10)))
    assert sum(results) == 1
    winner = await store.get_consultation("c-1")
    assert winner is not None and winner.clinician_id == f"dr-{results.index(True)}"


async def test_open_consultations_excludes_ended(store: Store) -> None:
    await store.put_consultation(consultation("c-a"), 0)
    b = await store.put_consultation(consultation("c-b"), 0)
    assert b is not None
    b.state = ConsultationState.ENDED
    assert await store.put_consultation(b, 1) is not None
    assert [c.id for c in await store.open_consultations()] == ["c-a"]
    ended = await store.get_consultation("c-b")
    assert ended is not None and ended.state is ConsultationState.ENDED


async def test_presence_is_stored_per_clinician(store: Store) -> None:
    p = ClinicianPresence(
        "dr-1",
        Role.SPECIALIST,
        "Dr One",
        PresenceStatus.AVAILABLE,
        ("ophthalmology", "paediatrics"),
        True,
        10.0,
        5.0,
    )
    written = await store.put_presence(p, 0)
    assert written is not None and written.version == 1
    await store.put_presence(
        ClinicianPresence(
            "c-2", Role.COUNSELLOR, "C", PresenceStatus.AWAY, ("counselling",), False, 1.0, 1.0
        ),
        0,
    )
    assert await store.get_presence("dr-1") == written
    assert await store.get_presence("nobody") is None
    assert {x.clinician_id for x in await store.all_presence()} == {"dr-1", "c-2"}


async def test_presence_write_is_compare_and_set(store: Store) -> None:
    first = await store.put_presence(presence("dr-1", PresenceStatus.AVAILABLE), 0)
    assert first is not None
    assert await store.put_presence(presence("dr-1", PresenceStatus.AWAY), 0) is None
    results = await asyncio.gather(
        store.put_presence(presence("dr-1", PresenceStatus.BUSY), first.version),
        store.put_presence(presence("dr-1", PresenceStatus.AWAY), first.version),
    )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert await store.get_presence("dr-1") == winners[0]


async def test_invite_redeems_once(store: Store) -> None:
    now = time.time()
    invite = Invite("code-1", "c-1", "dr-1", "parent", now, now + 600)
    assert await store.put_invite(invite, 10)
    assert await store.get_invite("code-1") == invite
    results = await asyncio.gather(
        store.redeem_invite("code-1", "guest-a"), store.redeem_invite("code-1", "guest-b")
    )
    used = [r for r in results if r is not None]
    assert len(used) == 1 and used[0].redeemed_by in {"guest-a", "guest-b"}
    stored = await store.get_invite("code-1")
    assert stored is not None and stored.redeemed_by == used[0].redeemed_by
    assert await store.redeem_invite("unknown", "guest-c") is None
    assert await store.get_invite("unknown") is None


async def test_outstanding_invites_are_capped_atomically(store: Store) -> None:
    now = time.time()

    def invite(code: str, expires_at: float) -> Invite:
        return Invite(code, "c-1", "dr-1", "parent", now, expires_at)

    assert await store.put_invite(invite("old", now - 1), 2), "an expired one is stored"
    results = await asyncio.gather(
        *(store.put_invite(invite(f"i-{n}", now + 600), 2) for n in range(5))
    )
    assert sum(results) == 2, "the expired invite does not count; at most 2 outstanding"
    stored = [f"i-{n}" for n, ok in enumerate(results) if ok]
    assert await store.redeem_invite(stored[0], "guest-a") is not None
    assert await store.put_invite(invite("after-redeem", now + 600), 2), "a redeemed one is used up"
    assert not await store.put_invite(invite("one-more", now + 600), 2)
    other = Invite("elsewhere", "c-2", "dr-1", "parent", now, now + 600)
    assert await store.put_invite(other, 2), "the cap is per consultation"


async def test_open_consultations_are_indexed_not_scanned(store: Store) -> None:
    for n in range(30):
        c = consultation(f"c-{n:02}")
        written = await store.put_consultation(c, 0)
        assert written is not None
        if n % 3:
            written.state = ConsultationState.ENDED
            assert await store.put_consultation(written, written.version) is not None
    assert [c.id for c in await store.open_consultations()] == [
        f"c-{n:02}" for n in range(0, 30, 3)
    ]


async def test_recent_durations_are_capped_newest_first(store: Store) -> None:
    for seconds in range(25):
        await store.add_duration("paediatrics", float(seconds))
    recent = await store.recent_durations("paediatrics")
    assert recent[0] == 24.0 and len(recent) == 20
    assert await store.recent_durations("counselling") == []


async def test_lock_excludes_other_owners_and_expires(store: Store) -> None:
    assert await store.try_lock("rounds", "node-a", 0.3)
    assert await store.try_lock("rounds", "node-a", 0.3), "the owner may extend"
    assert not await store.try_lock("rounds", "node-b", 0.3)
    await store.release_lock("rounds", "node-b")
    assert not await store.try_lock("rounds", "node-b", 0.3), "others cannot release it"
    await asyncio.sleep(0.4)
    assert await store.try_lock("rounds", "node-b", 5)
    await store.release_lock("rounds", "node-b")
    assert await store.try_lock("rounds", "node-a", 5)


def test_factory_picks_backend_and_refuses_unknown_schemes() -> None:
    assert create_store(None).backend == "memory"
    with pytest.raises(ValueError):
        create_store("postgres://x")


async def test_seen_heartbeat(store: Store) -> None:
    await store.mark_seen(["outlet-1", "dr-1"], 100.5)
    await store.mark_seen(["dr-1"], 200.0)
    await store.mark_seen([], 300.0)
    assert await store.seen_at(["outlet-1", "dr-1", "nobody"]) == {"outlet-1": 100.5, "dr-1": 200.0}
    assert await store.seen_at([]) == {}
