"""The typed index entry reads what earlier versions wrote, and both stores keep it alike."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pydantic import ValidationError

from recording.index import RecordingCatalog
from recording.model import (
    CompositeFailed,
    CompositeFile,
    CompositePending,
    RecordingMeta,
    RecordingStatus,
    TrackFile,
)
from records.facade import Records
from records.recording_index import SqlRecordingIndex
from rooms.store import RecordingIndex
from tests.recording.entries import started_entry, track_entry

COMPOSITE_FILE = {
    "file": "c-1/r-1/composite.webm.enc",
    "size": 999,
    "sha256": "cd" * 32,
    "encrypted": True,
    "key_id": "k" * 16,
    "track_name": "composite",
    "duration_s": 12.75,
}


def finalised(composite: dict[str, Any] | None, **more: Any) -> dict[str, Any]:
    """An entry as earlier versions left it once the recording was finalised."""
    return started_entry(
        "r-1",
        "c-1",
        "c-1/r-1",
        "ready",
        tracks=[
            track_entry("outlet-7-camera", "c-1/r-1/outlet-7-camera.webm.enc"),
            track_entry("outlet-7-microphone", "c-1/r-1/outlet-7-microphone.webm.enc", "audio"),
        ],
        composite=composite,
        stopped_at=1_700_000_113.0,
        duration_s=13.0,
        dropped_frames=2,
        queue_drops=0,
        **more,
    )


def assert_keeps(document: dict[str, Any], written: dict[str, Any]) -> None:
    """Every key an earlier version wrote is written back unchanged."""
    assert {key: written[key] for key in document} == document


@pytest.mark.parametrize(
    ("document", "composite_type"),
    [
        (started_entry("r-1", "c-1", "c-1/r-1"), type(None)),
        (finalised({"pending": True}), CompositePending),
        (finalised(COMPOSITE_FILE), CompositeFile),
        (finalised({"error": "composite failed"}), CompositeFailed),
        (finalised(None, interrupted=True), type(None)),
        (finalised(None, error="RuntimeError('disk full')"), type(None)),
    ],
)
def test_entries_written_before_read_and_write_back_unchanged(
    document: dict[str, Any], composite_type: type
) -> None:
    meta = RecordingMeta.from_document(document)
    assert isinstance(meta.composite, composite_type)
    assert meta.status is RecordingStatus(document["status"])
    assert meta.consent is not None and meta.consent.given_by == "outlet-7"
    assert_keeps(document, meta.to_document())
    assert RecordingMeta.from_document(meta.to_document()) == meta


def test_the_model_finds_files_and_pending_composites() -> None:
    pending = RecordingMeta.from_document(finalised({"pending": True}))
    assert pending.composite_pending and pending.file_named("composite") is None
    made = RecordingMeta.from_document(finalised(COMPOSITE_FILE))
    assert not made.composite_pending
    assert made.file_named("composite") == CompositeFile.model_validate(COMPOSITE_FILE)
    camera = made.file_named("outlet-7-camera")
    assert isinstance(camera, TrackFile) and camera.kind == "video" and camera.offset_s == 0.25
    assert made.file_named("nobody-camera") is None


@pytest.mark.parametrize(
    "broken",
    [
        {"recording_id": "r-1", "consultation_id": "c-1"},  # no folder, status, ...
        {**started_entry("r-1", "c-1", "c-1/r-1"), "status": "uploading"},
        {**started_entry("r-1", "c-1", "c-1/r-1"), "composite": {"pending": "soon"}},
        {**started_entry("r-1", "c-1", "c-1/r-1"), "tracks": [{"track_name": "x"}]},
    ],
)
def test_what_is_not_an_entry_is_refused(broken: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RecordingMeta.from_document(broken)


def test_assignments_are_checked() -> None:
    meta = RecordingMeta.from_document(started_entry("r-1", "c-1", "c-1/r-1"))
    with pytest.raises(ValidationError):
        meta.status = "uploading"  # type: ignore[assignment]


def test_the_records_database_is_the_recording_index() -> None:
    indexes: list[type[RecordingIndex]] = [SqlRecordingIndex]  # checked by mypy
    assert all(callable(getattr(kind, "save_recording", None)) for kind in indexes)


async def test_the_catalogue_on_each_engine(
    records: Records, caplog: pytest.LogCaptureFixture
) -> None:
    store = records.recordings
    catalog = RecordingCatalog(store)
    first = RecordingMeta.from_document(finalised({"pending": True}))
    second = RecordingMeta.from_document(started_entry("r-2", "c-1", "c-1/r-2"))
    other = RecordingMeta.from_document(started_entry("r-3", "c-2", "c-2/r-3"))
    for meta in (first, second, other):
        await catalog.save(meta)
    await store.save_recording({"recording_id": "r-bad", "consultation_id": "c-1"})

    assert await catalog.get("r-1") == first
    assert await catalog.get("missing") is None
    with caplog.at_level(logging.WARNING, logger="recording.index"):
        listed = await catalog.for_consultation("c-1")
        assert await catalog.get("r-bad") is None
    assert sorted(m.recording_id for m in listed) == ["r-1", "r-2"]
    assert "recording index entry unreadable recording=r-bad" in caplog.text
    assert sorted(m.recording_id for m in await catalog.all()) == ["r-1", "r-2", "r-3"]

    held = await catalog.set_legal_hold("r-1", True)
    assert held is not None and held.legal_hold and held.tracks == first.tracks
    assert await catalog.set_legal_hold("missing", True) is None
    first.duration_s = 2.5  # the recording service's own copy, which knows of no hold
    await catalog.save(first)
    assert first.legal_hold is True
    stored = await store.get_recording("r-1")
    assert stored is not None and stored["legal_hold"] is True and stored["duration_s"] == 2.5
    await catalog.delete("r-1")
    assert await catalog.get("r-1") is None
    assert [m.recording_id for m in await catalog.for_consultation("c-1")] == ["r-2"]
