"""Who may connect, and in which capacity."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """The role a token grants on the signaling connection."""

    OUTLET = "outlet"
    SPECIALIST = "specialist"
    COUNSELLOR = "counsellor"
    GUEST = "guest"
    ADMIN = "admin"

    @property
    def is_clinician(self) -> bool:
        """Specialists and counsellors take consultations from service queues."""
        return self in (Role.SPECIALIST, Role.COUNSELLOR)
