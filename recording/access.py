"""Who may do what with a consultation's recordings: the one access policy.

Used by the ``recording.*`` Socket.IO handlers and by the recording HTTP routes alike.

- start, stop: the consultation's own clinician (specialist or counsellor);
- list, download (decrypted on the fly): the consultation's own clinician, and admins;
- legal hold: admins only;
- state, acknowledge: whoever takes part in the consultation (the consultation service's own
  visibility check decides, as for every consultation event);
- decrypting a file outside the server (``teleconsult recording decrypt``) is an operator's
  act on the machine that holds the key, outside token roles; it is audited when the store is
  shared.
"""

from __future__ import annotations

from enum import StrEnum

from rooms.errors import Forbidden
from rooms.models import Consultation
from rooms.notify import Actor
from rooms.roles import Role


class RecordingAction(StrEnum):
    """What may be done with a consultation's recordings."""

    START = "start"
    STOP = "stop"
    LIST = "list"
    DOWNLOAD = "download"
    LEGAL_HOLD = "legal_hold"


_REFUSALS = {
    RecordingAction.START: "only this consultation's clinician may control its recording",
    RecordingAction.STOP: "only this consultation's clinician may control its recording",
    RecordingAction.LIST: "only the consultation's clinician and admins may access recordings",
    RecordingAction.DOWNLOAD: "only the consultation's clinician and admins may access recordings",
    RecordingAction.LEGAL_HOLD: "only admins may set a legal hold",
}


def _own_clinician(actor: Actor, consultation: Consultation | None) -> bool:
    return (
        consultation is not None
        and actor.role.is_clinician
        and consultation.clinician_id == actor.subject
    )


def may(actor: Actor, action: RecordingAction, consultation: Consultation | None) -> bool:
    """Whether ``actor`` may do ``action`` on the recordings of ``consultation``."""
    if action is RecordingAction.LEGAL_HOLD:
        return actor.role is Role.ADMIN
    if action in (RecordingAction.LIST, RecordingAction.DOWNLOAD) and actor.role is Role.ADMIN:
        return True
    return _own_clinician(actor, consultation)


def require(actor: Actor, action: RecordingAction, consultation: Consultation | None) -> None:
    """Raise :class:`~rooms.errors.Forbidden` unless :func:`may` allows it."""
    if not may(actor, action, consultation):
        raise Forbidden(_REFUSALS[action])
