"""The store interface the consultation domain persists through, and the factory picking a backend.

Consultations and clinician presence are written with optimistic locking: every write names the
version it read, and the write fails (``None``) if someone else wrote first. That compare-and-set
is atomic in every backend (a Lua script in Redis), so two server processes can never both claim
a consultation, and a background round never overwrites a status a clinician just chose.
Open consultations are indexed, so reading them costs what is open, not what was ever stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Literal, Protocol

from rooms.models import AuditEvent, ClinicianPresence, Consultation, Invite
from rooms.redis_connection import RedisOptions, is_redis_url

RECENT_DURATIONS = 20
# Ended consultations (with their audit) kept by the in-memory store; Redis keeps them for good.
DEFAULT_ENDED_RETENTION_S = 24 * 3600.0

AuditOutcome = Literal["written", "duplicate", "capped"]


class RecordingIndex(Protocol):
    """Where recording index entries are kept: JSON documents it knows nothing of beyond their
    two ids (``recording.index`` reads and writes them typed)."""

    async def save_recording(self, meta: dict[str, Any]) -> None:
        """Store an entry (needs string ``recording_id`` and ``consultation_id``)."""
        ...

    async def get_recording(self, recording_id: str) -> dict[str, Any] | None: ...

    async def recordings_for(self, consultation_id: str) -> list[dict[str, Any]]: ...

    async def all_recordings(self) -> list[dict[str, Any]]: ...

    async def delete_recording(self, recording_id: str) -> None: ...

    async def update_recording(
        self, recording_id: str, fields: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Set some top-level fields of an entry in one atomic step, the others as stored (so
        two writers of different fields never undo each other); the entry as now stored, or
        ``None`` when there is none. The two ids cannot change (``ValueError``)."""
        ...


class AuditTrail(Protocol):
    """Consultations' audit trails (kept in the records database, for years)."""

    async def append_audit(self, event: AuditEvent, max_per_action: int) -> AuditOutcome:
        """Append unless it repeats the consultation's last entry (same actor, action, details:
        ``duplicate``) or the consultation already has ``max_per_action`` entries of that action
        (``capped``); atomic."""
        ...

    async def audit_count(self, consultation_id: str, action: str) -> int:
        """How many entries of ``action`` the consultation's audit log holds."""
        ...

    async def audit_for(self, consultation_id: str) -> list[AuditEvent]: ...

    async def audit_page(self, consultation_id: str, start: int, count: int) -> list[AuditEvent]:
        """Up to ``count`` entries from position ``start`` (0 = oldest)."""
        ...


class Store(Protocol):
    """Live coordination state: consultations, presence, invites, wait history and locks.

    What must outlast it (audit trail, recording index, patients, reports) is in the records
    database: :class:`AuditTrail`, :class:`RecordingIndex` and ``records``."""

    backend: str

    async def close(self) -> None: ...

    async def put_consultation(
        self, consultation: Consultation, expected_version: int, durable: bool = False
    ) -> Consultation | None:
        """Write if the stored version is ``expected_version`` (0: must not exist yet).

        Returns the stored copy with its new version, or ``None`` when the version did not match.
        ``durable``: a change that must survive a failover of the store (check-in, acceptance,
        consent); where the store has replicas, it returns once one holds the change.
        """
        ...

    async def get_consultation(self, consultation_id: str) -> Consultation | None: ...

    async def open_consultations(self) -> list[Consultation]:
        """Every consultation that has not ended."""
        ...

    async def put_presence(
        self, presence: ClinicianPresence, expected_version: int
    ) -> ClinicianPresence | None:
        """Write if the stored version is ``expected_version`` (0: none stored yet).

        Returns the stored copy with its new version, or ``None`` when the version did not match.
        """
        ...

    async def get_presence(self, clinician_id: str) -> ClinicianPresence | None: ...

    async def all_presence(self) -> list[ClinicianPresence]: ...

    async def mark_seen(self, subjects: Iterable[str], at: float) -> None:
        """Record that these subjects still have a live connection (a process heartbeat)."""
        ...

    async def seen_at(self, subjects: Iterable[str]) -> dict[str, float]:
        """When each subject was last seen connected; unknown subjects are left out."""
        ...

    async def put_invite(self, invite: Invite, max_outstanding: int) -> bool:
        """Store the invite unless its consultation already has ``max_outstanding`` invites
        neither redeemed nor expired (at ``invite.created_at``); atomic. ``False`` if refused."""
        ...

    async def get_invite(self, code: str) -> Invite | None: ...

    async def redeem_invite(self, code: str, guest_id: str) -> Invite | None:
        """Mark the invite used by ``guest_id``; ``None`` if it is unknown or already used."""
        ...

    async def add_duration(self, service: str, seconds: float) -> None:
        """Remember how long a consultation took (the last few feed wait estimates)."""
        ...

    async def recent_durations(self, service: str) -> list[float]: ...

    async def try_lock(self, name: str, owner: str, ttl_s: float) -> bool:
        """Take (or extend, if already ours) a lock that expires by itself after ``ttl_s``."""
        ...

    async def release_lock(self, name: str, owner: str) -> None: ...


def create_store(
    url: str | None,
    ended_retention_s: float = DEFAULT_ENDED_RETENTION_S,
    redis_options: RedisOptions | None = None,
) -> Store:
    """In memory without a URL; Redis for ``redis://`` / ``rediss://`` / ``unix://`` URLs and
    ``redis+sentinel://`` ones (see ``rooms.redis_connection``, with ``redis_options``).

    ``ended_retention_s`` bounds the in-memory store: ended consultations and expired invites are
    dropped after it (Redis keeps consultations; invites expire there).
    """
    if not url or url == "memory://":
        from rooms.memory_store import MemoryStore

        return MemoryStore(ended_retention_s)
    if is_redis_url(url):
        from rooms.redis_store import RedisStore

        return RedisStore(url, redis_options)
    raise ValueError(f"unsupported store URL scheme: {url.split(':', 1)[0]!r}")


def audit_fingerprint(event: AuditEvent) -> str:
    """What makes two audit entries the same action (everything but the time)."""
    return json.dumps([event.actor, event.action, event.details], sort_keys=True)


def updated_recording(stored: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """``stored`` with ``fields`` set, or ``ValueError`` if they would change its ids."""
    updated = {**stored, **fields}
    if check_recording_meta(updated) != check_recording_meta(stored):
        raise ValueError("a recording entry keeps its recording_id and consultation_id")
    return updated


def check_recording_meta(meta: dict[str, Any]) -> tuple[str, str]:
    """The ``(recording_id, consultation_id)`` of recording metadata, or ``ValueError``."""
    recording_id = meta.get("recording_id")
    consultation_id = meta.get("consultation_id")
    if not isinstance(recording_id, str) or not isinstance(consultation_id, str):
        raise ValueError("recording metadata needs string recording_id and consultation_id")
    return recording_id, consultation_id
