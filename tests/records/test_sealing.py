"""Sealed at rest: a copy of the database file, a PostgreSQL dump or the Redis dump shows no
name, phone number or report text; a sealed value opens only in its own row and field; keys
rotate."""

from __future__ import annotations

import asyncio
import glob
import secrets
import subprocess
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis.asyncio as redis
from sqlalchemy import select

from recording.keys import Keyring
from records.errors import SealError
from records.facade import Records
from records.tables import PatientRow
from tests.conftest import TEST_SHARE_RULES, RedisServer, flush_redis, open_records, start_server
from tests.postgres import PostgresServer
from tests.records.conftest import nothing_else
from tests.records.test_care_flow import CHILD, register, report, visit
from tests.signaling.consultation_peers import Cast
from web.keys import records_key
from web.settings import Settings

NAME, GUARDIAN, PHONE = "Wang Mei", "Wang Li", "+86 138 0000 1111"
SUMMARY = "Mild myopia in both eyes."
SECRETS = [NAME, GUARDIAN, PHONE, SUMMARY, "myopia", "0000 1111"]


def leaks(data: bytes) -> list[str]:
    """Which of the known secrets appear in ``data`` (UTF-8, as SQL engines store text)."""
    return [s for s in SECRETS if s.encode() in data]


async def a_visit_with_a_final_report(cast: Cast) -> str:
    outlet = await cast.outlet("outlet-1")
    patient = await register(outlet)
    doctor = await cast.specialist("dr-a")
    ref = {"consultation_id": await visit(outlet, "outlet-1", patient["patient_id"], doctor)}
    await doctor.ok("report.save", {**ref, **report()})
    await doctor.ok("report.finalise", ref)
    await doctor.ok("consultation.end", ref)
    return str(ref["consultation_id"])


async def test_the_sqlite_file_and_the_redis_dump_hold_no_plaintext(
    test_settings: Settings, redis_server: RedisServer
) -> None:
    await flush_redis(redis_server.url)
    settings = replace(test_settings, store_url=redis_server.url)
    running = await start_server(settings)
    cast = Cast(running)
    try:
        cid = await a_visit_with_a_final_report(cast)
        # The report is there, and reads back in the clear through the keyring only.
        final = await running.app[records_key].reports.latest_final([cid])
        assert final[cid].summary == SUMMARY
    finally:
        await cast.close()
        await running.runner.cleanup()
    database = Path(settings.records_url.removeprefix("sqlite:///"))
    files = [Path(f) for f in glob.glob(f"{database}*")]
    assert database in files
    for path in files:
        assert leaks(path.read_bytes()) == [], path
    client = redis.Redis.from_url(redis_server.url)
    try:
        await client.save()
        folder = (await client.config_get("dir"))["dir"]
        name = (await client.config_get("dbfilename"))["dbfilename"]
    finally:
        await client.aclose()
    assert leaks((Path(folder) / name).read_bytes()) == []


async def test_a_postgresql_dump_holds_no_plaintext(
    postgres_server: PostgresServer, test_settings: Settings
) -> None:
    url = postgres_server.create_database(f"sealed_{secrets.token_hex(4)}")
    running = await start_server(replace(test_settings, records_url=url))
    cast = Cast(running)
    try:
        await a_visit_with_a_final_report(cast)
    finally:
        await cast.close()
        await running.runner.cleanup()
    dump = await asyncio.to_thread(
        subprocess.run,
        [pg_binary("pg_dump"), "--data-only", "--inserts", url],
        check=True,
        capture_output=True,
    )
    assert b"INSERT INTO public.patients" in dump.stdout
    assert leaks(dump.stdout) == []


def pg_binary(name: str) -> str:
    return sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))[-1]


async def test_a_sealed_value_opens_only_in_its_own_row_and_field(local_records: Records) -> None:
    sealer = local_records.sealer
    sealed = sealer.seal(NAME, "patients", "p-1", "display_name")
    assert sealer.open(sealed, "patients", "p-1", "display_name") == NAME
    for elsewhere in (("patients", "p-2", "display_name"), ("patients", "p-1", "guardian_name")):
        with pytest.raises(SealError):
            sealer.open(sealed, *elsewhere)
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(SealError):
        sealer.open(tampered, "patients", "p-1", "display_name")


async def test_rows_sealed_under_an_old_key_open_after_rotation(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'records.db'}"
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    first = await open_records(url, Keyring.of([], old))
    patient = await first.patients.register(
        NAME, 2017, "female", GUARDIAN, PHONE, "outlet-1", datetime.now(UTC), nothing_else
    )
    await first.close()

    rotated = Records(url, Keyring.of([old], new), TEST_SHARE_RULES)
    await rotated.open()
    try:
        assert await rotated.patients.by_card_code(patient.card_code) == patient
        second = await rotated.patients.register(
            "Li Na", 2016, "female", None, None, "outlet-1", datetime.now(UTC), nothing_else
        )
        async with rotated.database.transaction() as session:
            rows = {r.patient_id: r for r in await session.scalars(select(PatientRow))}
        key_ids = {pid: row.name_sealed[:16].decode() for pid, row in rows.items()}
        assert key_ids[patient.patient_id] == Keyring.of([], old).current_id
        assert key_ids[second.patient_id] == Keyring.of([], new).current_id
    finally:
        await rotated.close()

    without_old = Records(url, Keyring.of([], new), TEST_SHARE_RULES)
    with pytest.raises(SealError):
        await without_old.open()  # the look-up key was sealed under the old key
    await without_old.close()


async def test_card_codes_are_looked_up_by_keyed_hash_only(local_records: Records) -> None:
    patient = await local_records.patients.register(
        NAME, 2017, "female", None, None, "outlet-1", datetime.now(UTC), nothing_else
    )
    async with local_records.database.transaction() as session:
        row = await session.get(PatientRow, patient.patient_id)
        assert row is not None
        assert patient.card_code not in row.card_hash and len(row.card_hash) == 64
        assert patient.card_code.encode() not in row.card_sealed
    assert CHILD["display_name"] == NAME
