"""Recording index entries in the JSON form earlier server versions wrote to the stores."""

from __future__ import annotations

from typing import Any

CONSENT = {
    "given_by": "outlet-7",
    "given_at": 1_700_000_000.0,
    "outlet_id": "outlet-7",
    "purpose": "recording",
}


def started_entry(
    recording_id: str, consultation_id: str, folder: str, status: str = "recording", **more: Any
) -> dict[str, Any]:
    """An entry as written when a recording started (later fields are added by ``more``)."""
    return {
        "recording_id": recording_id,
        "consultation_id": consultation_id,
        "folder": folder,
        "status": status,
        "started_at": 1_700_000_100.0,
        "started_by": "dr-li",
        "key_id": "k" * 16,
        "consent": dict(CONSENT),
        "legal_hold": False,
        "tracks": [],
        "composite": None,
        **more,
    }


def track_entry(track_name: str, file: str, kind: str = "video") -> dict[str, Any]:
    """A finalised track as earlier versions listed it."""
    return {
        "track_name": track_name,
        "participant_id": track_name.rsplit("-", 1)[0],
        "kind": kind,
        "source": "camera" if kind == "video" else "microphone",
        "codec": "video/vp8" if kind == "video" else "audio/opus",
        "offset_s": 0.25,
        "duration_s": 12.5,
        "frames": 375,
        "file": file,
        "size": 123456,
        "sha256": "ab" * 32,
        "encrypted": True,
        "key_id": "k" * 16,
    }
