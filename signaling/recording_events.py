"""The ``recording.*`` events: validate, hand to :class:`~recording.service.Recordings`, ack.

Who may send which event is the access policy (:mod:`rooms.access`); the
lifecycle itself (tap, locks, finalising, recovery, composite) lives in :mod:`recording`.
"""

from __future__ import annotations

from typing import Any

from recording.service import Recordings
from rooms.roles import CLINICIAN_ROLES, PARTICIPANT_ROLES
from signaling.dispatch import Ack, Caller, EventSpec, event
from signaling.recording_messages import RecordingRef


class RecordingEvents:
    """Socket.IO handlers of ``recording.start``, ``.stop``, ``.state`` and ``.acknowledge``."""

    def __init__(self, recordings: Recordings) -> None:
        self._recordings = recordings

    def specs(self) -> list[EventSpec[Any]]:
        return [
            event("recording.start", RecordingRef, CLINICIAN_ROLES, self._on_start),
            event("recording.stop", RecordingRef, CLINICIAN_ROLES, self._on_stop),
            event("recording.state", RecordingRef, PARTICIPANT_ROLES, self._on_state),
            event("recording.acknowledge", RecordingRef, PARTICIPANT_ROLES, self._on_acknowledge),
        ]

    async def _on_start(self, caller: Caller, msg: RecordingRef) -> Ack:
        return {"ok": await self._recordings.start(caller.identity, msg.consultation_id)}

    async def _on_stop(self, caller: Caller, msg: RecordingRef) -> Ack:
        return {"ok": await self._recordings.stop_for(caller.identity, msg.consultation_id)}

    async def _on_state(self, caller: Caller, msg: RecordingRef) -> Ack:
        return {"ok": await self._recordings.state_for(caller.identity, msg.consultation_id)}

    async def _on_acknowledge(self, caller: Caller, msg: RecordingRef) -> Ack:
        return {"ok": await self._recordings.acknowledge(caller.identity, msg.consultation_id)}
