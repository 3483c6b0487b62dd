"""The recording index: the typed catalogue over the narrow recording index protocol.

The records database (``records.recording_index``) implements :class:`rooms.store.RecordingIndex`:
it keeps each entry as a JSON document and knows nothing of its fields beyond the two ids.
:class:`RecordingCatalog` is what recording code uses: it reads and writes
:class:`~recording.model.RecordingMeta`, so a renamed field is a type error, not a ``KeyError``.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from recording.model import RecordingMeta
from rooms.store import RecordingIndex

logger = logging.getLogger(__name__)


class RecordingCatalog:
    """Typed access to a :class:`RecordingIndex`. An entry that does not parse is logged and
    left alone (never listed, never deleted), so one damaged entry cannot stop a sweep."""

    def __init__(self, index: RecordingIndex) -> None:
        self._index = index

    async def save(self, meta: RecordingMeta) -> None:
        """Write ``meta`` whole, but for its legal hold: that is an admin's
        (:meth:`set_legal_hold`), keeps its stored value, and is copied into ``meta``. So the
        recording service's copy, held from start to finish, never lifts a hold set meanwhile."""
        fields = meta.to_document()
        del fields["legal_hold"]
        stored = await self._index.update_recording(meta.recording_id, fields)
        if stored is None:
            await self._index.save_recording(meta.to_document())
        else:
            meta.legal_hold = stored.get("legal_hold") is True

    async def set_legal_hold(self, recording_id: str, hold: bool) -> RecordingMeta | None:
        """Set or lift an entry's legal hold, its other fields as stored; the entry, or ``None``
        when there is none (or it does not parse)."""
        stored = await self._index.update_recording(recording_id, {"legal_hold": hold})
        return _parsed(stored) if stored is not None else None

    async def get(self, recording_id: str) -> RecordingMeta | None:
        document = await self._index.get_recording(recording_id)
        return _parsed(document) if document is not None else None

    async def for_consultation(self, consultation_id: str) -> list[RecordingMeta]:
        return _all_parsed(await self._index.recordings_for(consultation_id))

    async def all(self) -> list[RecordingMeta]:
        return _all_parsed(await self._index.all_recordings())

    async def delete(self, recording_id: str) -> None:
        await self._index.delete_recording(recording_id)


def _parsed(document: dict[str, Any]) -> RecordingMeta | None:
    try:
        return RecordingMeta.from_document(document)
    except ValidationError as exc:
        logger.warning(
            "recording index entry unreadable recording=%s errors=%d",
            str(document.get("recording_id"))[:64],
            exc.error_count(),
        )
        return None


def _all_parsed(documents: list[dict[str, Any]]) -> list[RecordingMeta]:
    return [meta for meta in map(_parsed, documents) if meta is not None]
