"""The access policy of the consultation domain, one table per check: who may and who may not."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rooms.audit import SYSTEM
from rooms.errors import DomainError, Forbidden, InvalidState
from rooms.models import Consultation, ConsultationState, Participant
from rooms.notify import Actor
from rooms.roles import Role
from rooms.rules import (
    require_caretaker,
    require_may_end,
    require_may_join,
    require_present,
    require_view,
    visible_services,
)
from tests.rooms.test_service import Who

OUTLET = Who("outlet-1", Role.OUTLET)
OTHER_OUTLET = Who("outlet-2", Role.OUTLET)
TREATING = Who("dr-1", Role.SPECIALIST, services=frozenset({"ophthalmology"}))
COVERING = Who("dr-2", Role.SPECIALIST, services=frozenset({"ophthalmology"}))
ELSEWHERE = Who("cn-1", Role.COUNSELLOR, services=frozenset({"counselling"}))
GUEST = Who("guest-1", Role.GUEST, consultation_id="c-1")
OTHER_GUEST = Who("guest-2", Role.GUEST, consultation_id="c-2")
ADMIN = Who("admin-1", Role.ADMIN)

Check = Callable[[Actor, Consultation], None]


def consultation(state: ConsultationState = ConsultationState.ACTIVE) -> Consultation:
    c = Consultation("c-1", "ophthalmology", "outlet-1", "P-1", True, False, None, 0.0, 0.0)
    c.state = state
    c.participants["outlet-1"] = Participant("outlet-1", Role.OUTLET, "kiosk", connected=True)
    c.participants["guest-1"] = Participant(
        "guest-1", Role.GUEST, "parent", connected=True, admitted=False
    )
    if state is ConsultationState.ACTIVE:
        c.clinician_id = "dr-1"
        c.participants["dr-1"] = Participant("dr-1", Role.SPECIALIST, "Dr", connected=True)
    return c


def refusal(check: Check, actor: Actor, c: Consultation) -> type[DomainError] | None:
    try:
        check(actor, c)
    except DomainError as error:
        return type(error)
    return None


CASES: list[tuple[str, Check, ConsultationState, Actor, type[DomainError] | None]] = [
    # Who may see a consultation.
    ("view", require_view, ConsultationState.ACTIVE, ADMIN, None),
    ("view", require_view, ConsultationState.ACTIVE, OUTLET, None),
    ("view", require_view, ConsultationState.ACTIVE, OTHER_OUTLET, Forbidden),
    ("view", require_view, ConsultationState.WAITING, COVERING, None),
    ("view", require_view, ConsultationState.ACTIVE, ELSEWHERE, Forbidden),
    ("view", require_view, ConsultationState.ACTIVE, GUEST, None),
    ("view", require_view, ConsultationState.ACTIVE, OTHER_GUEST, Forbidden),
    ("view", require_view, ConsultationState.ACTIVE, SYSTEM, Forbidden),
    # Who may enter the room (after the view check).
    ("join", require_may_join, ConsultationState.WAITING, OUTLET, None),
    ("join", require_may_join, ConsultationState.OFFERED, OUTLET, None),
    ("join", require_may_join, ConsultationState.ACTIVE, TREATING, None),
    ("join", require_may_join, ConsultationState.ACTIVE, COVERING, Forbidden),
    ("join", require_may_join, ConsultationState.WAITING, COVERING, Forbidden),
    ("join", require_may_join, ConsultationState.ACTIVE, GUEST, None),
    ("join", require_may_join, ConsultationState.ACTIVE, Who("guest-9", Role.GUEST), Forbidden),
    ("join", require_may_join, ConsultationState.ACTIVE, ADMIN, Forbidden),
    # Who may end it.
    ("end", require_may_end, ConsultationState.ACTIVE, ADMIN, None),
    ("end", require_may_end, ConsultationState.ACTIVE, OUTLET, None),
    ("end", require_may_end, ConsultationState.ACTIVE, OTHER_OUTLET, Forbidden),
    ("end", require_may_end, ConsultationState.ACTIVE, TREATING, None),
    ("end", require_may_end, ConsultationState.ACTIVE, COVERING, Forbidden),
    ("end", require_may_end, ConsultationState.ACTIVE, GUEST, Forbidden),
    # Who may record consent or invite guests.
    ("caretaker", require_caretaker, ConsultationState.ACTIVE, OUTLET, None),
    ("caretaker", require_caretaker, ConsultationState.ACTIVE, OTHER_OUTLET, Forbidden),
    ("caretaker", require_caretaker, ConsultationState.ACTIVE, TREATING, None),
    ("caretaker", require_caretaker, ConsultationState.ACTIVE, COVERING, Forbidden),
    ("caretaker", require_caretaker, ConsultationState.ACTIVE, GUEST, Forbidden),
    ("caretaker", require_caretaker, ConsultationState.ACTIVE, ADMIN, Forbidden),
]


@pytest.mark.parametrize(
    ("check", "state", "actor", "expected"),
    [case[1:] for case in CASES],
    ids=[f"{case[0]}-{case[3].subject}-{case[2].value}" for case in CASES],
)
def test_access(
    check: Check,
    state: ConsultationState,
    actor: Actor,
    expected: type[DomainError] | None,
) -> None:
    assert refusal(check, actor, consultation(state)) is expected


def test_a_clinician_joins_only_once_the_consultation_is_active() -> None:
    offered = consultation(ConsultationState.OFFERED)
    offered.clinician_id = "dr-1"
    assert refusal(require_may_join, TREATING, offered) is InvalidState


def test_media_needs_a_connected_admitted_participant() -> None:
    c = consultation()
    assert require_present(c.participants["outlet-1"]).participant_id == "outlet-1"
    with pytest.raises(Forbidden, match="wait to be admitted"):
        require_present(c.participants["guest-1"])
    with pytest.raises(Forbidden, match="join the consultation first"):
        require_present(None)


def test_queues_a_caller_may_list() -> None:
    assert visible_services(ADMIN, None) is None
    assert visible_services(ADMIN, "counselling") == {"counselling"}
    assert visible_services(COVERING, None) == {"ophthalmology"}
    with pytest.raises(Forbidden):
        visible_services(COVERING, "counselling")
    with pytest.raises(Forbidden):
        visible_services(OUTLET, None)
