"""The one access policy, role by role and access by access."""

from __future__ import annotations

import pytest

from rooms import access
from rooms.access import Access
from rooms.errors import Forbidden
from rooms.models import Consultation, ConsultationState, Participant
from rooms.roles import Role
from signaling.auth import Identity

A = Access
CLINICIAN_ONLY = {A.RECORDING_START, A.RECORDING_STOP, A.REPORT_WRITE, A.REPORT_READ_DRAFT}
TAKING_PART = {A.RECORDING_STATE, A.RECORDING_ACKNOWLEDGE, A.PHOTO_ADD, A.CHAT, A.CHAT_READ}
READERS = {A.RECORDING_LIST, A.RECORDING_DOWNLOAD, A.REPORT_READ_FINAL, A.PHOTO_READ}


def consultation(state: ConsultationState = ConsultationState.ACTIVE) -> Consultation:
    c = Consultation("c-1", "ophthalmology", "outlet-7", "p-1", True, False, None, 0.0, 0.0)
    c.state = state
    c.clinician_id = "dr-li"
    c.participants["guest-1"] = Participant("guest-1", Role.GUEST, "Mum", admitted=True)
    c.participants["guest-2"] = Participant("guest-2", Role.GUEST, "Uncle", admitted=False)
    return c


def who(role: Role, subject: str, consultation_id: str | None = None) -> Identity:
    services = frozenset({"ophthalmology"}) if role.is_clinician else frozenset()
    return Identity(subject, role, subject, services, consultation_id, 0.0, "token-1")


CASES = [
    # (who, accesses allowed on the active c-1 whose clinician is dr-li)
    (who(Role.SPECIALIST, "dr-li"), CLINICIAN_ONLY | TAKING_PART | READERS | {A.PHOTO_REQUEST}),
    (who(Role.COUNSELLOR, "dr-li"), CLINICIAN_ONLY | TAKING_PART | READERS | {A.PHOTO_REQUEST}),
    # Covering the service is not treating the patient: nothing of this consultation's records.
    (who(Role.SPECIALIST, "dr-other"), set()),
    (
        who(Role.ADMIN, "admin-1"),
        READERS | {A.RECORDING_LEGAL_HOLD, A.RECORDING_STATE, A.CHAT_READ},
    ),
    (who(Role.ADMIN, "dr-li"), READERS | {A.RECORDING_LEGAL_HOLD, A.RECORDING_STATE, A.CHAT_READ}),
    (who(Role.OUTLET, "outlet-7"), TAKING_PART | {A.REPORT_READ_FINAL, A.PHOTO_READ}),
    (who(Role.OUTLET, "outlet-8"), set()),
    (who(Role.GUEST, "guest-1", "c-1"), TAKING_PART),
    (who(Role.GUEST, "guest-2", "c-1"), set()),  # at the door: not admitted yet
    (who(Role.GUEST, "guest-1", "c-2"), set()),  # a token for another consultation
    (who(Role.OUTLET, "dr-li"), set()),  # a subject that matches is not enough: the role must
]


@pytest.mark.parametrize(("actor", "allowed"), CASES)
def test_policy_table(actor: Identity, allowed: set[Access]) -> None:
    for kind in Access:
        assert access.may(actor, kind, consultation()) is (kind in allowed), kind
        if kind in allowed:
            access.require(actor, kind, consultation())
        else:
            with pytest.raises(Forbidden):
                access.require(actor, kind, consultation())


def test_acts_of_those_taking_part_end_with_the_consultation() -> None:
    ended = consultation(ConsultationState.ENDED)
    for actor in (who(Role.GUEST, "guest-1", "c-1"), who(Role.OUTLET, "outlet-7")):
        for kind in (A.RECORDING_ACKNOWLEDGE, A.PHOTO_ADD, A.CHAT):
            assert not access.may(actor, kind, ended), (actor.subject, kind)
    # Reading what was left stays possible for those entitled to it.
    assert access.may(who(Role.OUTLET, "outlet-7"), A.REPORT_READ_FINAL, ended)
    assert access.may(who(Role.SPECIALIST, "dr-li"), A.REPORT_WRITE, ended)


def test_without_a_consultation_only_an_admin_reads_or_holds() -> None:
    assert access.may(who(Role.ADMIN, "admin-1"), A.RECORDING_LEGAL_HOLD, None)
    assert access.may(who(Role.ADMIN, "admin-1"), A.RECORDING_LIST, None)
    assert not access.may(who(Role.ADMIN, "admin-1"), A.REPORT_READ_FINAL, None)
    assert not access.may(who(Role.SPECIALIST, "dr-li"), A.RECORDING_START, None)


def test_a_consultation_without_a_clinician_is_nobody_s_to_record_or_report() -> None:
    c = consultation()
    c.clinician_id = None
    assert not access.may(who(Role.SPECIALIST, "dr-li"), A.RECORDING_START, c)
    assert not access.may(who(Role.SPECIALIST, "dr-li"), A.REPORT_WRITE, c)


def test_history_goes_to_a_clinician_treating_or_offered_the_patient_and_admins() -> None:
    treated = consultation()
    treated.patient_id = "pat-1"
    offered = consultation(ConsultationState.OFFERED)
    offered.patient_id, offered.clinician_id, offered.offered_to = "pat-1", None, "dr-wu"
    open_ = [treated, offered]
    assert access.may_read_history(who(Role.SPECIALIST, "dr-li"), "pat-1", open_)
    assert access.may_read_history(who(Role.SPECIALIST, "dr-wu"), "pat-1", open_)
    assert access.may_read_history(who(Role.ADMIN, "admin-1"), "pat-1", [])
    assert not access.may_read_history(who(Role.SPECIALIST, "dr-other"), "pat-1", open_)
    assert not access.may_read_history(who(Role.SPECIALIST, "dr-li"), "pat-2", open_)
    assert not access.may_read_history(who(Role.OUTLET, "outlet-7"), "pat-1", open_)
    with pytest.raises(Forbidden):
        access.require_history(who(Role.SPECIALIST, "dr-other"), "pat-1", open_)
    access.require_patient_lookup(who(Role.OUTLET, "outlet-8"))
    access.require_patient_lookup(who(Role.SPECIALIST, "dr-li"))  # then: treating or offered
    with pytest.raises(Forbidden):
        access.require_patient_lookup(who(Role.GUEST, "guest-1", "c-1"))


def test_a_waiting_outlet_hears_from_a_clinician_covering_its_service_only() -> None:
    waiting = consultation(ConsultationState.WAITING)
    waiting.clinician_id = None
    waiting.participants.clear()
    paediatrician = Identity(
        "dr-p", Role.SPECIALIST, "dr-p", frozenset({"paediatrics"}), None, 0.0, "t"
    )
    assert access.may(who(Role.SPECIALIST, "dr-other"), A.CHAT_WAITING, waiting)
    assert not access.may(paediatrician, A.CHAT_WAITING, waiting)
    assert not access.may(who(Role.OUTLET, "outlet-7"), A.CHAT_WAITING, waiting)
    assert not access.may(who(Role.OUTLET, "outlet-7"), A.CHAT, waiting), "no one else is there"
    waiting.offered_to = "dr-p"
    waiting.state = ConsultationState.OFFERED
    assert access.may(paediatrician, A.CHAT_WAITING, waiting), "offered it"
    assert access.taking_part_subjects(consultation()) == {"outlet-7", "dr-li", "guest-1"}
