"""Two ``teleconsult serve`` processes sharing one records database (an SQLite file, and
PostgreSQL): outlets on each race for the same slots, and every slot has exactly one winner."""

from __future__ import annotations

import asyncio
import base64
import secrets
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rooms.roles import Role
from tests.records.test_appointment_flow import ALL_DAY, wire
from tests.records.test_care_flow import CHILD
from tests.server_process import ServerProcess, spawn_server
from tests.signaling.consultation_peers import Peer

SLOTS = 6


@pytest.fixture
async def two_servers(
    records_url: str, tmp_path: Path
) -> AsyncIterator[tuple[ServerProcess, ServerProcess]]:
    # One database, one keyring: the processes share the recording key that seals its keys.
    env = {"TELECONSULT_RECORDING_KEY": base64.b64encode(secrets.token_bytes(32)).decode()}
    first = await spawn_server(tmp_path / "a" / "recordings", "--records-url", records_url, env=env)
    second = await spawn_server(
        tmp_path / "b" / "recordings", "--records-url", records_url, env=env
    )
    yield first, second
    for server in (first, second):
        await server.stop(signal.SIGTERM)


async def peer(server: ServerProcess, role: Role, subject: str) -> Peer:
    client = Peer(server.url, server.token(role, subject, services=["ophthalmology"]))
    await client.connect()
    return client


async def test_each_slot_has_one_winner_across_processes(
    two_servers: tuple[ServerProcess, ServerProcess],
) -> None:
    first, second = two_servers
    doctor = await peer(first, Role.SPECIALIST, "dr-a")
    await doctor.ok("schedule.set", {"service": "ophthalmology", "weekly": ALL_DAY})
    outlets = [
        await peer(first, Role.OUTLET, "outlet-1"),
        await peer(second, Role.OUTLET, "outlet-2"),
    ]
    children = [(await o.ok("patient.register", CHILD))["patient"]["patient_id"] for o in outlets]
    soon = datetime.now(UTC) + timedelta(hours=2)
    base = soon.replace(minute=0, second=0, microsecond=0)
    try:
        for index in range(SLOTS):
            start = wire(base + timedelta(minutes=15 * index))
            acks = await asyncio.gather(
                *(
                    o.call(
                        "appointment.book",
                        {
                            "patient_id": child,
                            "service": "ophthalmology",
                            "start": start,
                            "clinician_id": "dr-a",
                        },
                    )
                    for o, child in zip(outlets, children, strict=True)
                )
            )
            assert sorted("ok" if "ok" in a else a["error"]["code"] for a in acks) == [
                "conflict",
                "ok",
            ], acks
        window = {"from": wire(base), "to": wire(base + timedelta(hours=3))}
        booked = (await doctor.ok("appointment.list", window))["appointments"]
        assert len(booked) == SLOTS
        assert len({a["start"] for a in booked}) == SLOTS
    finally:
        for client in [doctor, *outlets]:
            await client.disconnect()
