"""The Redis parts of ``bench soak``: a Sentinel failover in the middle of the run, and at the
end a check, read from the store itself, that every acknowledged check-in and acceptance is
still there (a Redis store keeps consultations for good, so each must be found)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from benchmarks._sentinel import SentinelSetup
from rooms.errors import StoreUnavailable
from rooms.store import create_store

_BACK_WITHIN_S = 60.0


async def failover_at(
    setup: SentinelSetup, at: float, acks: list[tuple[float, str, float]], errors: Counter[str]
) -> dict[str, Any]:
    """At ``at`` (monotonic) kill the primary (SIGKILL, by PID) and time what follows: the
    promotion, and the first request acknowledged after it (``acks`` grows as the load runs)."""
    await asyncio.sleep(max(0.0, at - time.monotonic()))
    refused_before = sum(n for what, n in errors.items() if what.endswith(":unavailable"))
    old = await setup.kill_primary()
    killed = time.monotonic()
    promoted_port = await setup.wait_promotion(old.port)
    promoted = time.monotonic()
    first_ok = None
    while first_ok is None and time.monotonic() < promoted + _BACK_WITHIN_S:
        first_ok = next((at for at, _, _ in reversed(acks) if at > promoted), None)
        await asyncio.sleep(0.1)
    await asyncio.sleep(_BACK_WITHIN_S / 4)  # requests refused just after the promotion too
    refused = sum(n for what, n in errors.items() if what.endswith(":unavailable"))
    return {
        "killed_primary_port": old.port,
        "promoted_port": promoted_port,
        "kill_to_promotion_s": round(promoted - killed, 2),
        "promotion_to_first_ack_s": None if first_ok is None else round(first_ok - promoted, 2),
        "unavailable_acks": refused - refused_before,
    }


async def kept(url: str, checked_in: set[str], accepted: dict[str, str]) -> dict[str, Any]:
    """Which acknowledged check-ins and acceptances the store no longer has."""
    store = create_store(url)
    missing_check_ins: list[str] = []
    missing_acceptances: list[str] = []
    try:
        for cid in sorted(checked_in | set(accepted)):
            for _ in range(20):
                try:
                    found = await store.get_consultation(cid)
                    break
                except StoreUnavailable:
                    await asyncio.sleep(0.5)
            else:
                raise RuntimeError("the store did not answer the final check")
            if found is None and cid in checked_in:
                missing_check_ins.append(cid)
            if cid in accepted and (found is None or found.clinician_id != accepted[cid]):
                missing_acceptances.append(cid)
    finally:
        await store.close()
    return {
        "check_ins_acknowledged": len(checked_in),
        "check_ins_missing": missing_check_ins,
        "acceptances_acknowledged": len(accepted),
        "acceptances_missing": missing_acceptances,
    }
