"""A killed server loses no record: kill -9 while outlets register children and specialists
finalise reports, restart on the same records database (the embedded default: memory store and
an SQLite file), and everything acknowledged is there: patients, reports, audit and the family's
copy."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from socketio.exceptions import SocketIOError

from rooms.roles import Role
from rooms.tasks import within
from tests.records.test_care_flow import CHILD, check_in, report
from tests.server_process import ServerProcess, spawn_server
from tests.signaling.consultation_peers import Peer

VISITS_PER_OUTLET = 12
OUTLETS = 4


async def peer(server: ServerProcess, role: Role, subject: str, **claims: Any) -> Peer:
    connected = Peer(server.url, server.token(role, subject, **claims))
    await connected.connect()
    return connected


KILL_AFTER = OUTLETS * 3  # finalised reports


async def visits(
    server: ServerProcess, n: int, done: list[dict[str, Any]], enough: asyncio.Event
) -> None:
    """One outlet and its specialist, visit after visit; ``done`` gets each acknowledged one,
    ``enough`` is set once ``KILL_AFTER`` reports are final."""
    outlet = await peer(server, Role.OUTLET, f"outlet-{n}")
    doctor = await peer(server, Role.SPECIALIST, f"dr-{n}", services=("ophthalmology",))
    try:
        for i in range(VISITS_PER_OUTLET):
            child = {**CHILD, "display_name": f"Child {n}-{i}"}
            patient = (await outlet.ok("patient.register", child))["patient"]
            acknowledged: dict[str, Any] = {"patient": patient}
            done.append(acknowledged)
            checked = await outlet.ok(
                "consultation.check_in", check_in(f"outlet-{n}", patient["patient_id"])
            )
            ref = {"consultation_id": checked["consultation_id"]}
            await doctor.ok("consultation.accept", {**ref, "pick": True})
            await doctor.ok("report.save", {**ref, **report(summary=f"Summary {n}-{i}")})
            final = await doctor.ok("report.finalise", ref)
            await doctor.ok("consultation.end", ref)
            acknowledged.update(final, consultation_id=ref["consultation_id"])
            if sum("report" in d for d in done) >= KILL_AFTER:
                enough.set()
    except (AssertionError, OSError, TimeoutError, SocketIOError, aiohttp.ClientError):
        pass  # the server was killed mid-visit: only what was acknowledged counts
    finally:
        await outlet.disconnect()
        await doctor.disconnect()


@pytest.mark.slow
async def test_a_kill_9_under_load_loses_nothing_acknowledged(tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    server = await spawn_server(recordings)
    done: list[dict[str, Any]] = []
    enough = asyncio.Event()
    try:
        load = [asyncio.create_task(visits(server, n, done, enough)) for n in range(OUTLETS)]
        await within(enough.wait(), 120)
        server.process.send_signal(signal.SIGKILL)
        await within(asyncio.gather(*load), 30)
    finally:
        await server.ensure_stopped()
    assert server.process.returncode == -signal.SIGKILL

    restarted = await spawn_server(recordings)
    try:
        admin = await peer(restarted, Role.ADMIN, "admin-1")
        outlet = await peer(restarted, Role.OUTLET, "outlet-9")
        finalised = [d for d in done if "report" in d]
        assert len(finalised) >= KILL_AFTER
        for acknowledged in done:
            found = await outlet.ok(
                "patient.lookup", {"card_code": acknowledged["patient"]["card_code"]}
            )
            assert found["patient"] == acknowledged["patient"]
        async with aiohttp.ClientSession() as http:
            for acknowledged in finalised:
                pid = acknowledged["patient"]["patient_id"]
                history = await admin.ok("patient.history", {"patient_id": pid})
                (visit,) = history["visits"]
                assert visit["report"]["summary"] == acknowledged["report"]["summary"]
                audit = await admin.ok(
                    "audit.list", {"consultation_id": acknowledged["consultation_id"]}
                )
                actions = {e["action"] for e in audit["events"]}
                assert {"check_in", "pick", "report_finalised", "end"} <= actions
                url = f"{restarted.url}/api/reports/{acknowledged['share_code']}"
                async with http.post(url, json={"pin": acknowledged["share_pin"]}) as response:
                    assert response.status == 200
                    assert (await response.json())["report"]["version"] == 1
        await admin.disconnect()
        await outlet.disconnect()
    finally:
        await restarted.ensure_stopped()
