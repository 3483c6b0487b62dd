"""In-process store (the default). Values are kept as JSON so they behave exactly like Redis's."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from rooms.models import AuditEvent, ClinicianPresence, Consultation, Invite
from rooms.store import RECENT_DURATIONS, check_recording_meta


class MemoryStore:
    """Everything in dictionaries of one process; lost on restart."""

    backend = "memory"

    def __init__(self) -> None:
        self._consultations: dict[str, str] = {}
        self._presence: dict[str, str] = {}
        self._seen: dict[str, float] = {}
        self._invites: dict[str, str] = {}
        self._audit: defaultdict[str, list[str]] = defaultdict(list)
        self._durations: defaultdict[str, list[float]] = defaultdict(list)
        self._locks: dict[str, tuple[str, float]] = {}
        self._recordings: dict[str, str] = {}

    async def close(self) -> None:
        """Nothing to release."""

    async def put_consultation(
        self, consultation: Consultation, expected_version: int
    ) -> Consultation | None:
        current = self._consultations.get(consultation.id)
        stored_version = json.loads(current)["version"] if current else 0
        if stored_version != expected_version:
            return None
        written = consultation.copy()
        written.version = expected_version + 1
        self._consultations[consultation.id] = json.dumps(written.to_dict())
        return written

    async def get_consultation(self, consultation_id: str) -> Consultation | None:
        raw = self._consultations.get(consultation_id)
        return Consultation.from_dict(json.loads(raw)) if raw else None

    async def open_consultations(self) -> list[Consultation]:
        found = (Consultation.from_dict(json.loads(raw)) for raw in self._consultations.values())
        return [c for c in found if c.is_open]

    async def put_presence(self, presence: ClinicianPresence) -> None:
        self._presence[presence.clinician_id] = json.dumps(presence.to_dict())

    async def get_presence(self, clinician_id: str) -> ClinicianPresence | None:
        raw = self._presence.get(clinician_id)
        return ClinicianPresence.from_dict(json.loads(raw)) if raw else None

    async def all_presence(self) -> list[ClinicianPresence]:
        return [ClinicianPresence.from_dict(json.loads(raw)) for raw in self._presence.values()]

    async def mark_seen(self, subjects: Iterable[str], at: float) -> None:
        self._seen.update(dict.fromkeys(subjects, float(at)))

    async def seen_at(self, subjects: Iterable[str]) -> dict[str, float]:
        return {s: self._seen[s] for s in subjects if s in self._seen}

    async def put_invite(self, invite: Invite) -> None:
        self._invites[invite.code] = json.dumps(invite.to_dict())

    async def get_invite(self, code: str) -> Invite | None:
        raw = self._invites.get(code)
        return Invite.from_dict(json.loads(raw)) if raw else None

    async def redeem_invite(self, code: str, guest_id: str) -> Invite | None:
        invite = await self.get_invite(code)
        if invite is None or invite.redeemed_by is not None:
            return None
        data = {**invite.to_dict(), "redeemed_by": guest_id}
        self._invites[code] = json.dumps(data)
        return Invite.from_dict(data)

    async def append_audit(self, event: AuditEvent) -> None:
        self._audit[event.consultation_id].append(json.dumps(event.to_dict()))

    async def audit_for(self, consultation_id: str) -> list[AuditEvent]:
        return [
            AuditEvent.from_dict(json.loads(raw)) for raw in self._audit.get(consultation_id, [])
        ]

    async def add_duration(self, service: str, seconds: float) -> None:
        recent = self._durations[service]
        recent.insert(0, float(seconds))
        del recent[RECENT_DURATIONS:]

    async def recent_durations(self, service: str) -> list[float]:
        return list(self._durations.get(service, []))

    async def try_lock(self, name: str, owner: str, ttl_s: float) -> bool:
        now = time.monotonic()
        holder = self._locks.get(name)
        if holder is not None and holder[0] != owner and holder[1] > now:
            return False
        self._locks[name] = (owner, now + ttl_s)
        return True

    async def release_lock(self, name: str, owner: str) -> None:
        holder = self._locks.get(name)
        if holder is not None and holder[0] == owner:
            del self._locks[name]

    async def save_recording(self, meta: dict[str, Any]) -> None:
        recording_id, _ = check_recording_meta(meta)
        self._recordings[recording_id] = json.dumps(meta)

    async def get_recording(self, recording_id: str) -> dict[str, Any] | None:
        raw = self._recordings.get(recording_id)
        return dict(json.loads(raw)) if raw else None

    async def recordings_for(self, consultation_id: str) -> list[dict[str, Any]]:
        return [m for m in await self.all_recordings() if m["consultation_id"] == consultation_id]

    async def all_recordings(self) -> list[dict[str, Any]]:
        return [dict(json.loads(raw)) for raw in self._recordings.values()]

    async def delete_recording(self, recording_id: str) -> None:
        self._recordings.pop(recording_id, None)
