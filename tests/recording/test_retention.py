"""Retention deletes expired recordings only, never one on legal hold or still in progress."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from recording.retention import RetentionSweeper
from records.facade import Records
from tests.recording.entries import started_entry, track_entry

DAY = 86400.0
NOW = 1_800_000_000.0


def meta(
    recording_id: str, age_days: float, status: str = "ready", hold: bool = False
) -> dict[str, Any]:
    folder = f"c-{recording_id}/{recording_id}"
    return started_entry(
        recording_id,
        f"c-{recording_id}",
        folder,
        status,
        started_at=NOW - age_days * DAY - 600,
        stopped_at=NOW - age_days * DAY,
        legal_hold=hold,
        tracks=[track_entry("p-camera", f"{folder}/p-camera.webm")],
    )


async def test_sweep_deletes_only_expired_recordings_and_audits_each(
    records: Records, tmp_path: Path
) -> None:
    store = records.recordings
    recordings = [
        meta("old", 31),
        meta("older", 400),
        meta("fresh", 29),
        meta("held", 400, hold=True),
        meta("compositing", 40, status="compositing"),
        meta("recording", 40, status="recording"),
    ]
    for entry in recordings:
        await store.save_recording(entry)
        folder = tmp_path / entry["folder"]
        folder.mkdir(parents=True)
        (folder / "p-camera.webm").write_bytes(b"media")
    audited: list[tuple[str, str, dict[str, Any]]] = []

    async def audit(consultation_id: str, action: str, details: dict[str, Any]) -> None:
        audited.append((consultation_id, action, details))

    sweeper = RetentionSweeper(store, tmp_path, 30 * DAY, audit, clock=lambda: NOW)
    assert sorted(await sweeper.sweep()) == ["old", "older"]

    remaining = {m["recording_id"] for m in await store.all_recordings()}
    assert remaining == {"fresh", "held", "compositing", "recording"}
    for entry in recordings:
        exists = (tmp_path / entry["folder"] / "p-camera.webm").exists()
        assert exists == (entry["recording_id"] in remaining), entry["recording_id"]
        assert (tmp_path / f"c-{entry['recording_id']}").exists()  # other recordings' folders stay
    assert sorted((c, a, d["recording_id"]) for c, a, d in audited) == [
        ("c-old", "recording_deleted", "old"),
        ("c-older", "recording_deleted", "older"),
    ]
    assert all(d["reason"] == "retention" for _, _, d in audited)
    assert await sweeper.sweep() == []


async def test_the_periodic_task_sweeps_and_stops_on_close(
    local_records: Records, tmp_path: Path
) -> None:
    store = local_records.recordings
    await store.save_recording(meta("old", 31))
    swept: list[str] = []

    async def audit(consultation_id: str, action: str, details: dict[str, Any]) -> None:
        swept.append(details["recording_id"])

    sweeper = RetentionSweeper(store, tmp_path, 30 * DAY, audit, interval_s=0.05, clock=lambda: NOW)
    sweeper.start()
    for _ in range(100):
        if swept:
            break
        await asyncio.sleep(0.02)
    await sweeper.close()
    assert swept == ["old"] and await store.get_recording("old") is None
