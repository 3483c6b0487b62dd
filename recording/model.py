"""The recording index entry, typed: :class:`RecordingMeta` with its :class:`TrackFile` list.

One entry per recording, written when it starts (``status`` ``recording``), completed when it is
finalised (``ready``; ``compositing`` while the side-by-side composite is made), and changed by
an admin's legal hold. The stores keep it as a JSON document: :meth:`RecordingMeta.to_document`
writes the same keys earlier versions wrote, and :meth:`RecordingMeta.from_document` reads
entries those versions left (fields added later have defaults).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from recording.files import StoredFile
from rooms.models import Consent


class RecordingStatus(StrEnum):
    """Where a recording is in its life: being recorded, its composite being made, done."""

    RECORDING = "recording"
    COMPOSITING = "compositing"
    READY = "ready"


class _TrackFacts(BaseModel):
    """What a track file holds: whose media, which codec, when it starts, how long it lasts."""

    model_config = ConfigDict(extra="forbid")

    track_name: str
    participant_id: str
    kind: str
    source: str
    codec: str
    offset_s: float
    duration_s: float
    frames: int


class RecordedTrack(_TrackFacts):
    """One track file as the recorder (or crash recovery) left it, before it is checksummed."""

    model_config = ConfigDict(frozen=True)

    path: Path


class _Stored(BaseModel):
    """A finished encrypted file, named relative to the recordings folder."""

    model_config = ConfigDict(extra="forbid")

    file: str
    size: int
    sha256: str
    encrypted: bool = True
    key_id: str


class TrackFile(_TrackFacts, _Stored):
    """One participant's track in the index: what it is, when it starts, and its file."""

    @classmethod
    def of(cls, track: RecordedTrack, stored: StoredFile) -> TrackFile:
        facts = track.model_dump(exclude={"path"})
        return cls(
            **facts, file=stored.name, size=stored.size, sha256=stored.sha256, key_id=stored.key_id
        )


class CompositeFile(_Stored):
    """The side-by-side composite of a recording's tracks."""

    track_name: Literal["composite"] = "composite"
    duration_s: float


class CompositePending(BaseModel):
    """The composite is still to be made (at the next start, if a shutdown came first)."""

    model_config = ConfigDict(extra="forbid")

    pending: Literal[True] = True


class CompositeFailed(BaseModel):
    """Making the composite failed; the track files are unaffected."""

    model_config = ConfigDict(extra="forbid")

    error: str


Composite = CompositeFile | CompositePending | CompositeFailed


class RecordingMeta(BaseModel):
    """A recording's index entry (see ``docs/protocol.md``, "Recording HTTP API")."""

    model_config = ConfigDict(validate_assignment=True)

    recording_id: str
    consultation_id: str
    folder: str
    status: RecordingStatus
    started_at: float
    started_by: str
    key_id: str
    consent: Consent | None
    legal_hold: bool = False
    tracks: list[TrackFile] = []
    composite: Composite | None = None
    stopped_at: float | None = None
    duration_s: float | None = None
    dropped_frames: int = 0
    queue_drops: int = 0
    interrupted: bool = False
    error: str | None = None
    continues: str | None = None
    segment: int = 1

    @property
    def composite_pending(self) -> bool:
        """Finalised, but a shutdown left its composite to be made."""
        return self.status is RecordingStatus.READY and isinstance(self.composite, CompositePending)

    def file_named(self, track_name: str) -> TrackFile | CompositeFile | None:
        """The stored file of a track, or of the composite (``"composite"``) once it is made."""
        if track_name == "composite":
            return self.composite if isinstance(self.composite, CompositeFile) else None
        return next((t for t in self.tracks if t.track_name == track_name), None)

    def to_document(self) -> dict[str, Any]:
        """The JSON document the stores keep (what :meth:`from_document` reads back)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> RecordingMeta:
        """Read a stored entry (raises ``pydantic.ValidationError`` if it is not one)."""
        return cls.model_validate(document)
