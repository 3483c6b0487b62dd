"""Payload models of the ``recording.*`` client events (see docs/protocol.md, "Recording")."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

ConsultationId = Annotated[str, Field(min_length=1, max_length=128)]


class RecordingRef(BaseModel):
    """Payload of ``recording.start``, ``.stop``, ``.acknowledge`` and ``.state``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    consultation_id: ConsultationId
