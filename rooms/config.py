"""The consultation service's timings, queue policy and limits."""

from __future__ import annotations

from dataclasses import dataclass, field

from rooms.queue import QueuePolicy


@dataclass(frozen=True)
class ServiceConfig:
    """Timings and queue policy; built by the composition root from settings."""

    offer_timeout_s: float = 30.0
    rejoin_grace_s: float = 60.0
    empty_room_grace_s: float = 60.0
    presence_timeout_s: float = 10.0
    default_invite_ttl_s: float = 15 * 60.0
    policy: QueuePolicy = field(default_factory=QueuePolicy)
    max_open_per_outlet: int = 4
    max_invites_per_consultation: int = 10
    max_audit_per_action: int = 100
    queue_push_entries: int = 20
    audit_page_max: int = 200
    # How long a checked-in appointment waits for its booked clinician (while online) before
    # anyone covering the service may take it.
    preferred_clinician_wait_s: float = 300.0

    @property
    def round_interval_s(self) -> float:
        """How often deadlines are checked: a quarter of the shortest one, within 50 ms..1 s."""
        shortest = min(
            self.offer_timeout_s,
            self.rejoin_grace_s,
            self.empty_room_grace_s,
            self.presence_timeout_s,
        )
        return min(1.0, max(0.05, shortest / 4))
