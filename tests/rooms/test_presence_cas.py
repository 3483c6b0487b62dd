"""Presence is compare-and-set: rounds and presence.set race on a real Redis, nothing is lost.

The heartbeat round used to read a clinician's presence and write it back whole, so a
``presence.set(busy)`` landing in between was silently undone (54 of 200 tries) and offers went
to busy clinicians. Here two server nodes share one Redis and one clinician (two tabs), their
rounds run while the clinician changes status, over and over.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from records.facade import Records
from rooms.models import ConsultationState, PresenceStatus
from rooms.service import CheckIn, ConsultationService, ServiceConfig
from rooms.store import AuditTrail, Store
from tests.rooms.test_service import DR, OUTLET, Inbox

STATUSES = (PresenceStatus.BUSY, PresenceStatus.AVAILABLE, PresenceStatus.AWAY)


# Both nodes share one real Redis: the race is between processes.
pytestmark = pytest.mark.parametrize("store", ["redis"], indirect=True)


@dataclass
class OfferWatch(Inbox):
    """Also notes the clinician's stored status whenever an offer is announced."""

    store: Store | None = None
    offered_while: list[tuple[str, PresenceStatus | None]] = field(default_factory=list)

    async def to_subject(self, subject: str, event: str, payload: dict[str, Any]) -> None:
        if event == "consultation.offered" and self.store is not None:
            presence = await self.store.get_presence(subject)
            self.offered_while.append(
                (payload["consultation"]["id"], presence.status if presence else None)
            )
        await super().to_subject(subject, event, payload)


def node(store: Store, audit: AuditTrail, inbox: Inbox) -> ConsultationService:
    config = ServiceConfig(offer_timeout_s=30, presence_timeout_s=10, rejoin_grace_s=60)
    return ConsultationService(store, audit, inbox, config, time.time)


async def beat(service: ConsultationService) -> None:
    """One round with the heartbeat due (it runs every third of the presence timeout)."""
    await service.heartbeat(force=True)
    await service.run_round()


async def test_a_status_the_clinician_sets_is_never_overwritten_by_rounds(
    store: Store, local_records: Records
) -> None:
    first = node(store, local_records.audit, Inbox())
    second = node(store, local_records.audit, Inbox())
    await first.connected(DR, "sid-1")
    await second.connected(DR, "sid-2")
    rng = random.Random(3)
    try:
        for attempt in range(200):
            wanted = STATUSES[attempt % len(STATUSES)]
            racers = [beat(first), beat(second), first.set_presence(DR, wanted)]
            rng.shuffle(racers)
            await asyncio.gather(*racers)
            stored = await store.get_presence(DR.subject)
            assert stored is not None and stored.status is wanted, attempt
            assert stored.online
    finally:
        await first.close()
        await second.close()


async def test_no_offer_goes_to_a_clinician_who_set_busy(
    store: Store, local_records: Records
) -> None:
    inbox = OfferWatch(store=store)
    first = node(store, local_records.audit, inbox)
    second = node(store, local_records.audit, Inbox())
    await first.connected(DR, "sid-1")
    await second.connected(DR, "sid-2")
    await first.connected(OUTLET, "sid-o")
    for n in range(3):
        await first.check_in(OUTLET, CheckIn("ophthalmology", OUTLET.subject, f"P-{n}", True))
    rng = random.Random(5)
    try:
        for attempt in range(120):
            wanted = PresenceStatus.AVAILABLE if attempt % 2 else PresenceStatus.BUSY
            racers = [beat(first), beat(second), first.set_presence(DR, wanted)]
            rng.shuffle(racers)
            await asyncio.gather(*racers)
            offered = [
                c
                for c in await store.open_consultations()
                if c.state is ConsultationState.OFFERED and c.offered_to == DR.subject
            ]
            if wanted is PresenceStatus.BUSY:
                assert offered == [], attempt
    finally:
        await first.close()
        await second.close()
    assert inbox.offered_while, "offers were made while the clinician was available"
    withdrawn = {
        p["consultation_id"] for p in inbox.events_for(DR.subject, "consultation.offer_withdrawn")
    }
    for consultation_id, status in inbox.offered_while:
        # An offer announced just before the clinician went busy is withdrawn at once.
        assert status is PresenceStatus.AVAILABLE or consultation_id in withdrawn
