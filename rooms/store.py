"""The store interface the consultation domain persists through, and the factory picking a backend.

Consultations are written with optimistic locking: every write names the version it read, and
the write fails (``None``) if someone else wrote first. That compare-and-set is atomic in every
backend (a Lua script in Redis), so two server processes can never both claim a consultation.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from rooms.models import AuditEvent, ClinicianPresence, Consultation, Invite

RECENT_DURATIONS = 20


class Store(Protocol):
    """Consultations, presence, invites, audit, wait history, locks and the recording index."""

    backend: str

    async def close(self) -> None: ...

    async def put_consultation(
        self, consultation: Consultation, expected_version: int
    ) -> Consultation | None:
        """Write if the stored version is ``expected_version`` (0: must not exist yet).

        Returns the stored copy with its new version, or ``None`` when the version did not match.
        """
        ...

    async def get_consultation(self, consultation_id: str) -> Consultation | None: ...

    async def open_consultations(self) -> list[Consultation]:
        """Every consultation that has not ended."""
        ...

    async def put_presence(self, presence: ClinicianPresence) -> None: ...

    async def get_presence(self, clinician_id: str) -> ClinicianPresence | None: ...

    async def all_presence(self) -> list[ClinicianPresence]: ...

    async def mark_seen(self, subjects: Iterable[str], at: float) -> None:
        """Record that these subjects still have a live connection (a process heartbeat)."""
        ...

    async def seen_at(self, subjects: Iterable[str]) -> dict[str, float]:
        """When each subject was last seen connected; unknown subjects are left out."""
        ...

    async def put_invite(self, invite: Invite) -> None: ...

    async def get_invite(self, code: str) -> Invite | None: ...

    async def redeem_invite(self, code: str, guest_id: str) -> Invite | None:
        """Mark the invite used by ``guest_id``; ``None`` if it is unknown or already used."""
        ...

    async def append_audit(self, event: AuditEvent) -> None: ...

    async def audit_for(self, consultation_id: str) -> list[AuditEvent]: ...

    async def add_duration(self, service: str, seconds: float) -> None:
        """Remember how long a consultation took (the last few feed wait estimates)."""
        ...

    async def recent_durations(self, service: str) -> list[float]: ...

    async def try_lock(self, name: str, owner: str, ttl_s: float) -> bool:
        """Take (or extend, if already ours) a lock that expires by itself after ``ttl_s``."""
        ...

    async def release_lock(self, name: str, owner: str) -> None: ...

    async def save_recording(self, meta: dict[str, Any]) -> None:
        """Store recording metadata (JSON-able; needs ``recording_id`` and ``consultation_id``)."""
        ...

    async def get_recording(self, recording_id: str) -> dict[str, Any] | None: ...

    async def recordings_for(self, consultation_id: str) -> list[dict[str, Any]]: ...

    async def all_recordings(self) -> list[dict[str, Any]]: ...

    async def delete_recording(self, recording_id: str) -> None: ...


def create_store(url: str | None) -> Store:
    """In memory without a URL; Redis for ``redis://`` / ``rediss://`` / ``unix://`` URLs."""
    if not url or url == "memory://":
        from rooms.memory_store import MemoryStore

        return MemoryStore()
    if url.startswith(("redis://", "rediss://", "unix://")):
        from rooms.redis_store import RedisStore

        return RedisStore(url)
    raise ValueError(f"unsupported store URL scheme: {url.split(':', 1)[0]!r}")


def check_recording_meta(meta: dict[str, Any]) -> tuple[str, str]:
    """The ``(recording_id, consultation_id)`` of recording metadata, or ``ValueError``."""
    recording_id = meta.get("recording_id")
    consultation_id = meta.get("consultation_id")
    if not isinstance(recording_id, str) or not isinstance(consultation_id, str):
        raise ValueError("recording metadata needs string recording_id and consultation_id")
    return recording_id, consultation_id
