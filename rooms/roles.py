"""Who may connect, and in which capacity."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """Who acts: the role a token grants on the signaling connection, or the server itself."""

    OUTLET = "outlet"
    SPECIALIST = "specialist"
    COUNSELLOR = "counsellor"
    GUEST = "guest"
    ADMIN = "admin"
    SYSTEM = "system"

    @property
    def is_clinician(self) -> bool:
        """Specialists and counsellors take consultations from service queues."""
        return self in CLINICIAN_ROLES

    @property
    def grantable(self) -> bool:
        """Whether a token may carry this role (``system`` is the server's own, never granted)."""
        return self is not Role.SYSTEM


CLINICIAN_ROLES: tuple[Role, ...] = (Role.SPECIALIST, Role.COUNSELLOR)
"""Who takes consultations from service queues and controls their notes and recording."""

PARTICIPANT_ROLES: tuple[Role, ...] = (Role.OUTLET, Role.SPECIALIST, Role.COUNSELLOR, Role.GUEST)
"""Who may take part in a consultation's room and its media (admins only watch from outside)."""
