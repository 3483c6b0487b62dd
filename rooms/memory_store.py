"""In-process store (the default). Values are kept as JSON so they behave exactly like Redis's.

Open consultations are indexed; ended ones and expired invites are dropped after a retention
period, so memory and per-round work follow what is live, not history (the records database keeps
what must last: audit, recording index, reports).
"""

from __future__ import annotations

import heapq
import json
import time
from collections import defaultdict
from collections.abc import Iterable

from rooms.models import ClinicianPresence, Consultation, Invite
from rooms.store import DEFAULT_ENDED_RETENTION_S, RECENT_DURATIONS

# As in Redis: an expired invite stays readable this long (a late guest hears "expired").
INVITE_AFTERLIFE_S = 86400.0


class MemoryStore:
    """Everything in dictionaries of one process; lost on restart."""

    backend = "memory"

    def __init__(self, ended_retention_s: float = DEFAULT_ENDED_RETENTION_S) -> None:
        self._ended_retention_s = ended_retention_s
        self._consultations: dict[str, str] = {}
        self._open: set[str] = set()
        self._presence: dict[str, str] = {}
        self._seen: dict[str, float] = {}
        self._invites: dict[str, str] = {}
        self._invites_of: defaultdict[str, set[str]] = defaultdict(set)
        self._durations: defaultdict[str, list[float]] = defaultdict(list)
        self._locks: dict[str, tuple[str, float]] = {}
        # (drop at, monotonic) → consultation id / invite code, oldest first.
        self._ended_queue: list[tuple[float, str]] = []
        self._invite_queue: list[tuple[float, str]] = []

    async def close(self) -> None:
        """Nothing to release."""

    async def put_consultation(
        self, consultation: Consultation, expected_version: int, durable: bool = False
    ) -> Consultation | None:
        """``durable`` changes nothing here: one process, no replica to wait for."""
        self._purge()
        current = self._consultations.get(consultation.id)
        stored_version = json.loads(current)["version"] if current else 0
        if stored_version != expected_version:
            return None
        written = consultation.copy()
        written.version = expected_version + 1
        self._consultations[consultation.id] = json.dumps(written.to_dict())
        if written.is_open:
            self._open.add(written.id)
        elif written.id in self._open or expected_version == 0:
            self._open.discard(written.id)
            drop_at = time.monotonic() + self._ended_retention_s
            heapq.heappush(self._ended_queue, (drop_at, written.id))
        return written

    async def get_consultation(self, consultation_id: str) -> Consultation | None:
        raw = self._consultations.get(consultation_id)
        return Consultation.from_dict(json.loads(raw)) if raw else None

    async def open_consultations(self) -> list[Consultation]:
        return [
            Consultation.from_dict(json.loads(self._consultations[cid]))
            for cid in sorted(self._open)
        ]

    async def put_presence(
        self, presence: ClinicianPresence, expected_version: int
    ) -> ClinicianPresence | None:
        current = await self.get_presence(presence.clinician_id)
        if (current.version if current else 0) != expected_version:
            return None
        written = ClinicianPresence.from_dict(
            {**presence.to_dict(), "version": expected_version + 1}
        )
        self._presence[presence.clinician_id] = json.dumps(written.to_dict())
        return written

    async def get_presence(self, clinician_id: str) -> ClinicianPresence | None:
        raw = self._presence.get(clinician_id)
        return ClinicianPresence.from_dict(json.loads(raw)) if raw else None

    async def all_presence(self) -> list[ClinicianPresence]:
        return [ClinicianPresence.from_dict(json.loads(raw)) for raw in self._presence.values()]

    async def mark_seen(self, subjects: Iterable[str], at: float) -> None:
        self._seen.update(dict.fromkeys(subjects, float(at)))

    async def seen_at(self, subjects: Iterable[str]) -> dict[str, float]:
        return {s: self._seen[s] for s in subjects if s in self._seen}

    async def put_invite(self, invite: Invite, max_outstanding: int) -> bool:
        self._purge()
        outstanding = [
            other
            for other in (self._invite(code) for code in self._invites_of[invite.consultation_id])
            if other is not None
            and other.redeemed_by is None
            and other.expires_at > invite.created_at
        ]
        if len(outstanding) >= max_outstanding:
            return False
        self._invites[invite.code] = json.dumps(invite.to_dict())
        self._invites_of[invite.consultation_id].add(invite.code)
        lifetime = max(0.0, invite.expires_at - invite.created_at) + INVITE_AFTERLIFE_S
        heapq.heappush(self._invite_queue, (time.monotonic() + lifetime, invite.code))
        return True

    async def get_invite(self, code: str) -> Invite | None:
        return self._invite(code)

    def _invite(self, code: str) -> Invite | None:
        raw = self._invites.get(code)
        return Invite.from_dict(json.loads(raw)) if raw else None

    async def redeem_invite(self, code: str, guest_id: str) -> Invite | None:
        invite = self._invite(code)
        if invite is None or invite.redeemed_by is not None:
            return None
        data = {**invite.to_dict(), "redeemed_by": guest_id}
        self._invites[code] = json.dumps(data)
        return Invite.from_dict(data)

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

    def _purge(self) -> None:
        """Drop ended consultations past retention and long-expired invites."""
        now = time.monotonic()
        while self._ended_queue and self._ended_queue[0][0] <= now:
            _, cid = heapq.heappop(self._ended_queue)
            if cid in self._open:
                continue
            self._consultations.pop(cid, None)
        while self._invite_queue and self._invite_queue[0][0] <= now:
            _, code = heapq.heappop(self._invite_queue)
            invite = self._invite(code)
            if invite is None:
                continue
            del self._invites[code]
            codes = self._invites_of.get(invite.consultation_id)
            if codes is not None:
                codes.discard(code)
                if not codes:
                    del self._invites_of[invite.consultation_id]
