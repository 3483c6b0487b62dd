"""The records database drops and comes back: requests in between get ``unavailable``, the
server reconnects by itself, and a report being finalised is either wholly written (final
version, share code, audit entry) or not at all."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from tests.conftest import RunningServer, start_server
from tests.postgres import PostgresServer
from tests.records.test_care_flow import drafted
from tests.signaling.consultation_peers import Cast
from web.keys import records_key
from web.settings import Settings


@pytest.fixture
async def on_postgres(
    postgres_server: PostgresServer, test_settings: Settings
) -> AsyncIterator[tuple[RunningServer, PostgresServer]]:
    url = postgres_server.create_database(f"outage_{secrets.token_hex(4)}")
    running = await start_server(replace(test_settings, records_url=url))
    yield running, postgres_server
    await running.runner.cleanup()


async def wholly_final_or_not(server: RunningServer, consultation_id: str) -> bool:
    """The report's final version, its share and its audit entry exist together or not at all;
    returns whether the report is final."""
    records = server.app[records_key]
    final = await records.reports.latest_final([consultation_id])
    share = await records.shares.existing(consultation_id)
    audit = await records.audit.audit_for(consultation_id)
    finalised = [e for e in audit if e.action == "report_finalised"]
    assert bool(final) == (share is not None) == bool(finalised), (final, share, finalised)
    assert len(finalised) <= 1
    return bool(final)


async def test_requests_while_the_database_is_down_are_unavailable_then_work_again(
    on_postgres: tuple[RunningServer, PostgresServer],
) -> None:
    server, database = on_postgres
    cast = Cast(server)
    try:
        outlet, doctor, ref = await drafted(cast)
        # In a thread: a fast shutdown can take seconds, and a blocked loop would miss the
        # clients' heartbeats (they were dropped once in CI and the next request went unanswered).
        await asyncio.to_thread(database.stop)
        try:
            assert await doctor.refused("report.finalise", ref) == "unavailable"
            assert await outlet.refused("report.get", ref) == "unavailable"
        finally:
            await asyncio.to_thread(database.restart)
        assert (await outlet.ok("report.get", ref))["report"] is None, "still a draft"
        final = await doctor.ok("report.finalise", ref)
        assert final["report"]["status"] == "final" and final["share_pin"]
        assert await wholly_final_or_not(server, ref["consultation_id"])
    finally:
        await cast.close()


@pytest.mark.slow
async def test_a_restart_while_finalising_writes_the_report_wholly_or_not_at_all(
    on_postgres: tuple[RunningServer, PostgresServer],
) -> None:
    server, database = on_postgres
    cast = Cast(server)
    outcomes: list[str] = []
    try:
        for attempt in range(3):
            _, doctor, ref = await drafted(cast)
            finalising = asyncio.create_task(doctor.call("report.finalise", ref))
            await asyncio.sleep(0.002 * attempt)
            await asyncio.to_thread(database.restart)
            ack = await finalising
            outcomes.append("ok" if "ok" in ack else ack["error"]["code"])
            assert outcomes[-1] in ("ok", "unavailable"), ack
            final = await wholly_final_or_not(server, ref["consultation_id"])
            if outcomes[-1] == "ok":
                assert final
            if not final:  # refused before it was written: finalising again works
                await doctor.ok("report.finalise", ref)
                assert await wholly_final_or_not(server, ref["consultation_id"])
    finally:
        await cast.close()
