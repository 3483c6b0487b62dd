"""A recording whose process died is finalised at the next start, unless its owner is alive."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from media.config import MediaConfig
from media.metrics import MediaMetrics
from media.router import MediaRegistry
from recording.files import DecryptingReader
from recording.service import LOCK_TTL_S, RecordingConfig, Recordings
from recording.tap import ConsultationRecorder
from records.facade import Records
from rooms.service import ConsultationService, ServiceConfig
from rooms.store import RecordingIndex, Store
from signaling.rtc_events import RtcSignals
from tests.recording.entries import started_entry
from tests.recording.synthetic import KEYRING, FakeClock, feed_all, participant_media


class Silent:
    async def to_subject(self, subject: str, event: str, payload: dict[str, Any]) -> None:
        return None

    async def to_service(self, service: str, event: str, payload: dict[str, Any]) -> None:
        return None

    async def to_admins(self, event: str, payload: dict[str, Any]) -> None:
        return None


async def leftover(index: RecordingIndex, root: Path, recording_id: str) -> None:
    """Files and an index entry as a crashed process leaves them (status still ``recording``)."""
    folder = Path("c1") / recording_id
    clock = FakeClock()
    recorder = ConsultationRecorder(
        recording_id, "c1", root / folder, lambda: None, KEYRING, clock=clock
    )
    feed_all(recorder, clock, participant_media("outlet-7", (200, 20, 20), 440.0, 2.0))
    await recorder.stop()
    await index.save_recording(
        started_entry(recording_id, "c1", str(folder), started_at=time.time() - 60)
    )


async def test_recovery_finalises_dead_recordings_only(
    store: Store, local_records: Records, tmp_path: Path
) -> None:
    index = local_records.recordings
    service = ConsultationService(store, local_records.audit, Silent(), ServiceConfig())
    media = MediaRegistry(MediaConfig(), MediaMetrics(CollectorRegistry()), RtcSignals(Silent()))
    recordings = Recordings(
        service, store, index, media, Silent(), RecordingConfig(root=tmp_path, keyring=KEYRING)
    )
    await leftover(index, tmp_path, "dead")
    await leftover(index, tmp_path, "alive")
    assert await store.try_lock("recording:alive", "another-process", LOCK_TTL_S)

    assert await recordings.recover() == ["dead"]

    dead = await index.get_recording("dead")
    assert dead is not None and dead["status"] == "ready" and dead["interrupted"] is True
    tracks = {t["track_name"]: t for t in dead["tracks"]}
    assert set(tracks) == {"outlet-7-camera", "outlet-7-microphone"}
    camera = tracks["outlet-7-camera"]
    assert camera["participant_id"] == "outlet-7" and camera["kind"] == "video"
    assert camera["encrypted"] and abs(camera["duration_s"] - 2.0) < 0.2
    assert camera["key_id"] == KEYRING.current_id
    with DecryptingReader(tmp_path / camera["file"], KEYRING) as reader:
        assert reader.complete and reader.size == camera["size"]
    alive = await index.get_recording("alive")
    assert alive is not None and alive["status"] == "recording"
    audit = await local_records.audit.audit_for("c1")
    assert [e.details["recording_id"] for e in audit if e.action == "recording_recovered"] == [
        "dead"
    ]
    assert await recordings.recover() == []
    await recordings.close()
