"""One behaviour contract for the records database, on SQLite and on a real PostgreSQL: the
audit trail, the recording index, consent evidence, patients, visits, reports and shares."""

from __future__ import annotations

import asyncio

import pytest

from records.facade import Records
from rooms.models import AuditEvent


async def test_audit_log_keeps_order_per_consultation(records: Records) -> None:
    trail = records.audit
    for i, action in enumerate(["check_in", "offer", "accept"]):
        event = AuditEvent("c-1", float(i), "x", "outlet", action, {"i": i})
        assert await trail.append_audit(event, 10) == "written"
    await trail.append_audit(AuditEvent("c-2", 9.0, "y", "admin", "end", {}), 10)
    assert [e.action for e in await trail.audit_for("c-1")] == ["check_in", "offer", "accept"]
    assert (await trail.audit_for("c-1"))[2].details == {"i": 2}
    assert await trail.audit_for("c-none") == []
    assert [e.action for e in await trail.audit_page("c-1", 1, 5)] == ["offer", "accept"]
    assert [e.action for e in await trail.audit_page("c-1", 0, 1)] == ["check_in"]
    assert await trail.audit_page("c-1", 3, 5) == []


async def test_audit_skips_repeats_and_caps_each_action(records: Records) -> None:
    trail = records.audit

    def consent(at: float, purpose: str = "recording") -> AuditEvent:
        return AuditEvent("c-1", at, "outlet-1", "outlet", "consent", {"purpose": purpose})

    assert await trail.append_audit(consent(1.0), 3) == "written"
    assert await trail.append_audit(consent(2.0), 3) == "duplicate"
    withdrawn = AuditEvent("c-1", 3.0, "outlet-1", "outlet", "consent_withdrawn", {})
    assert await trail.append_audit(withdrawn, 3) == "written"
    assert await trail.append_audit(consent(4.0), 3) == "written"
    assert await trail.append_audit(consent(5.0, "other"), 3) == "written"
    assert await trail.append_audit(consent(6.0), 3) == "capped"
    assert await trail.audit_count("c-1", "consent") == 3
    assert await trail.audit_count("c-1", "notes") == 0
    assert [e.at for e in await trail.audit_for("c-1")] == [1.0, 3.0, 4.0, 5.0]


async def test_recording_index(records: Records) -> None:
    index = records.recordings
    await index.save_recording({"recording_id": "r-1", "consultation_id": "c-1", "size": 10})
    await index.save_recording({"recording_id": "r-2", "consultation_id": "c-1"})
    await index.save_recording({"recording_id": "r-3", "consultation_id": "c-2"})
    assert await index.get_recording("r-1") == {
        "recording_id": "r-1",
        "consultation_id": "c-1",
        "size": 10,
    }
    assert {m["recording_id"] for m in await index.recordings_for("c-1")} == {"r-1", "r-2"}
    assert len(await index.all_recordings()) == 3
    await index.delete_recording("r-1")
    await index.delete_recording("r-unknown")
    assert await index.get_recording("r-1") is None
    assert [m["recording_id"] for m in await index.recordings_for("c-1")] == ["r-2"]
    with pytest.raises(ValueError):
        await index.save_recording({"recording_id": "r-9"})


async def test_recording_updates_set_fields_atomically(records: Records) -> None:
    index = records.recordings
    await index.save_recording({"recording_id": "r-1", "consultation_id": "c-1", "size": 10})
    assert await index.update_recording("r-1", {"hold": True}) == {
        "recording_id": "r-1",
        "consultation_id": "c-1",
        "size": 10,
        "hold": True,
    }
    assert await index.update_recording("r-unknown", {"hold": True}) is None
    assert await index.get_recording("r-unknown") is None
    with pytest.raises(ValueError):
        await index.update_recording("r-1", {"consultation_id": "c-2"})
    # Writers of different fields at once (each read, then write) never undo each other.
    await asyncio.gather(
        *(index.update_recording("r-1", {f"field-{n}": n}) for n in range(8)),
        *(index.update_recording("r-1", {"size": 20}) for _ in range(4)),
    )
    stored = await index.get_recording("r-1")
    assert stored is not None
    assert {k: v for k, v in stored.items() if k.startswith("field-")} == {
        f"field-{n}": n for n in range(8)
    }
    assert stored["size"] == 20 and stored["hold"] is True
    assert [m["recording_id"] for m in await index.recordings_for("c-1")] == ["r-1"]
