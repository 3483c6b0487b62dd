"""The aiortc/aioice internals the relay relies on are there and behave as tested (fails
loudly on an upgrade; see "How to upgrade aiortc" in docs/architecture.md)."""

from __future__ import annotations

import aioice
import aiortc

from media.aiortc_adapter.registry import AIOICE_TESTED, AIORTC_TESTED
from media.aiortc_adapter.tripwire import tripwire


def test_pinned_aiortc_and_aioice_are_the_tested_ones() -> None:
    assert aiortc.__version__.startswith(AIORTC_TESTED + "."), (
        f"media/aiortc_adapter was written for aiortc {AIORTC_TESTED}.x, found "
        f"{aiortc.__version__}: run the tripwire, re-check, then update AIORTC_TESTED"
    )
    assert aioice.__version__.startswith(AIOICE_TESTED + ".")


async def test_every_internal_is_there_and_receiving_matches_aiortc() -> None:
    assert await tripwire() == []
