"""The recording access policy, role by role and action by action."""

from __future__ import annotations

import pytest

from recording import access
from recording.access import RecordingAction
from rooms.errors import Forbidden
from rooms.models import Consultation
from rooms.roles import Role
from signaling.auth import Identity

START, STOP = RecordingAction.START, RecordingAction.STOP
LIST, DOWNLOAD, HOLD = RecordingAction.LIST, RecordingAction.DOWNLOAD, RecordingAction.LEGAL_HOLD


def consultation() -> Consultation:
    c = Consultation("c-1", "ophthalmology", "outlet-7", "p-1", True, False, None, 0.0, 0.0)
    c.clinician_id = "dr-li"
    return c


def who(role: Role, subject: str) -> Identity:
    return Identity(subject, role, subject, frozenset(), None, 0.0, "token-1")


CASES = [
    # (role, subject, actions allowed on c-1, whose clinician is dr-li)
    (Role.SPECIALIST, "dr-li", {START, STOP, LIST, DOWNLOAD}),
    (Role.COUNSELLOR, "dr-li", {START, STOP, LIST, DOWNLOAD}),
    (Role.SPECIALIST, "dr-other", set()),
    (Role.ADMIN, "admin-1", {LIST, DOWNLOAD, HOLD}),
    (Role.ADMIN, "dr-li", {LIST, DOWNLOAD, HOLD}),  # an admin token is not a clinician's
    (Role.OUTLET, "outlet-7", set()),
    (Role.GUEST, "guest-1", set()),
    (Role.OUTLET, "dr-li", set()),  # a subject that matches is not enough: the role must
]


@pytest.mark.parametrize(("role", "subject", "allowed"), CASES)
def test_policy_table(role: Role, subject: str, allowed: set[RecordingAction]) -> None:
    actor = who(role, subject)
    for action in RecordingAction:
        assert access.may(actor, action, consultation()) is (action in allowed), action
        if action in allowed:
            access.require(actor, action, consultation())
        else:
            with pytest.raises(Forbidden):
                access.require(actor, action, consultation())


def test_without_a_consultation_only_the_legal_hold_can_be_decided() -> None:
    assert access.may(who(Role.ADMIN, "admin-1"), HOLD, None)
    assert not access.may(who(Role.SPECIALIST, "dr-li"), START, None)
    assert access.may(who(Role.ADMIN, "admin-1"), LIST, None)


def test_a_consultation_without_a_clinician_is_nobody_s_to_record() -> None:
    c = consultation()
    c.clinician_id = None
    assert not access.may(who(Role.SPECIALIST, "dr-li"), START, c)
