"""The open-consultation limit per outlet holds across server processes sharing one Redis.

Each process counted the outlet's open consultations and then wrote the new one; two processes
checking in for one outlet at once could both count below the limit and both write.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from records.facade import Records
from rooms.errors import TooManyOpenConsultations
from rooms.service import CheckIn, ConsultationService, ServiceConfig
from rooms.store import AuditTrail, Store
from tests.rooms.test_service import OUTLET, Inbox

pytestmark = pytest.mark.parametrize("store", ["memory", "redis"], indirect=True)

LIMIT = 4


def node(store: Store, audit: AuditTrail) -> ConsultationService:
    config = ServiceConfig(max_open_per_outlet=LIMIT)
    return ConsultationService(store, audit, Inbox(), config, time.time)


async def test_concurrent_check_ins_on_two_nodes_never_pass_the_limit(
    store: Store, local_records: Records
) -> None:
    nodes = [node(store, local_records.audit) for _ in range(3)]
    request = CheckIn("ophthalmology", OUTLET.subject, "P-1", guardian_present=True)
    try:
        for round_ in range(3):
            attempts = [nodes[i % 3].check_in(OUTLET, request) for i in range(3 * LIMIT)]
            results = await asyncio.gather(*attempts, return_exceptions=True)
            accepted = [r for r in results if not isinstance(r, BaseException)]
            refused = [r for r in results if isinstance(r, TooManyOpenConsultations)]
            assert len(accepted) + len(refused) == len(results), results
            open_now = [
                c for c in await store.open_consultations() if c.outlet_id == OUTLET.subject
            ]
            assert len(open_now) == LIMIT, round_
            for consultation in open_now:  # make room for the next round
                await nodes[0].cancel(OUTLET, consultation.id)
    finally:
        for service in nodes:
            await service.close()
