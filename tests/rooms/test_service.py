"""ConsultationService on both stores, driven with a manual clock and explicit rounds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from records.facade import Records
from rooms.audit import SYSTEM, AuditAction
from rooms.errors import Conflict, Expired, Forbidden, InvalidState
from rooms.models import ConsultationState, PresenceStatus
from rooms.roles import Role
from rooms.service import CheckIn, ConsultationService, ServiceConfig
from rooms.store import Store


@dataclass(frozen=True)
class Who:
    subject: str
    role: Role
    name: str = "someone"
    services: frozenset[str] = frozenset()
    consultation_id: str | None = None


@dataclass
class Inbox:
    """A notifier that keeps what it was asked to send."""

    sent: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    async def to_subject(self, subject: str, event: str, payload: dict[str, Any]) -> None:
        self.sent.append((subject, event, payload))

    async def to_service(self, service: str, event: str, payload: dict[str, Any]) -> None:
        self.sent.append(("service:" + service, event, payload))

    async def to_admins(self, event: str, payload: dict[str, Any]) -> None:
        self.sent.append(("admins", event, payload))

    def events_for(self, subject: str, event: str) -> list[dict[str, Any]]:
        return [p for s, e, p in self.sent if s == subject and e == event]


@dataclass
class Hooks:
    calls: list[tuple[str, ...]] = field(default_factory=list)

    async def on_participant_left(self, consultation_id: str, participant_id: str) -> None:
        self.calls.append(("left", consultation_id, participant_id))

    async def on_consultation_ended(self, consultation_id: str) -> None:
        self.calls.append(("ended", consultation_id))

    async def on_consent_withdrawn(self, consultation_id: str) -> None:
        self.calls.append(("consent_withdrawn", consultation_id))


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


OUTLET = Who("outlet-1", Role.OUTLET)
DR = Who("dr-1", Role.SPECIALIST, services=frozenset({"ophthalmology"}))
DR2 = Who("dr-2", Role.SPECIALIST, services=frozenset({"ophthalmology"}))
ADMIN = Who("admin", Role.ADMIN)


@dataclass
class Rig:
    service: ConsultationService
    inbox: Inbox
    hooks: Hooks
    clock: Clock


@pytest.fixture
async def rig(store: Store, local_records: Records) -> AsyncIterator[Rig]:
    clock, inbox, hooks = Clock(), Inbox(), Hooks()
    service = ConsultationService(
        store,
        local_records.audit,
        inbox,
        ServiceConfig(
            offer_timeout_s=30, rejoin_grace_s=60, empty_room_grace_s=60, presence_timeout_s=10
        ),
        clock,
    )
    service.add_listener(hooks)
    yield Rig(service, inbox, hooks, clock)
    await service.close()


async def checked_in(rig: Rig, **extra: Any) -> str:
    await rig.service.connected(OUTLET, "sid-o")
    request = CheckIn("ophthalmology", "outlet-1", "P-1", True, **extra)
    consultation, _ = await rig.service.check_in(OUTLET, request)
    return consultation.id


async def active(rig: Rig) -> str:
    cid = await checked_in(rig)
    await rig.service.connected(DR, "sid-d")
    await rig.service.pick(DR, cid)
    await rig.service.join(OUTLET, cid)
    return cid


async def test_offer_times_out_back_to_queue_and_clinician_goes_away(rig: Rig) -> None:
    cid = await checked_in(rig)
    await rig.service.connected(DR, "sid-d")
    await rig.service.set_presence(DR, PresenceStatus.AVAILABLE)
    await rig.service.run_round()
    assert rig.inbox.events_for("dr-1", "consultation.offered")[0]["consultation"]["id"] == cid
    rig.clock.now += 29
    await rig.service.run_round()
    assert not rig.inbox.events_for("dr-1", "consultation.offer_withdrawn")
    rig.clock.now += 2
    await rig.service.run_round()
    assert rig.inbox.events_for("dr-1", "consultation.offer_withdrawn") == [
        {"consultation_id": cid, "reason": "timeout"}
    ]
    consultation = await rig.service.get(ADMIN, cid)
    assert consultation.state is ConsultationState.WAITING
    assert consultation.queued_at == rig.clock.now - 31, "the queue place is kept"
    with pytest.raises(Conflict):
        await rig.service.accept(DR, cid)
    overview = await rig.service.overview(ADMIN)
    assert overview["clinicians"][0]["status"] == "away"


async def test_listeners_hear_leave_grace_end_and_consent(rig: Rig) -> None:
    cid = await active(rig)
    participant = await rig.service.require_participant(cid, DR)
    assert participant.participant_id == "dr-1" and participant.role is Role.SPECIALIST
    consent = await rig.service.record_consent(OUTLET, cid, "recording")
    assert (await rig.service.consent_for(cid)) == consent and consent.outlet_id == "outlet-1"
    await rig.service.withdraw_consent(DR, cid)
    assert await rig.service.consent_for(cid) is None
    assert ("consent_withdrawn", cid) in rig.hooks.calls

    await rig.service.disconnected(OUTLET, "sid-o")
    with pytest.raises(Forbidden):
        await rig.service.require_participant(cid, OUTLET)
    rig.clock.now += 59
    await rig.service.run_round()
    assert ("left", cid, "outlet-1") not in rig.hooks.calls
    rig.clock.now += 2
    await rig.service.run_round()
    assert ("left", cid, "outlet-1") in rig.hooks.calls

    await rig.service.leave(DR, cid)
    assert ("left", cid, "dr-1") in rig.hooks.calls
    rig.clock.now += 61
    await rig.service.run_round()
    ended = await rig.service.get(ADMIN, cid)
    assert ended.state is ConsultationState.ENDED and ended.ended_reason == "empty"
    assert rig.hooks.calls[-1] == ("ended", cid)
    with pytest.raises(InvalidState):
        await rig.service.require_participant(cid, DR)


async def test_expired_and_reused_invites_are_refused(rig: Rig) -> None:
    cid = await active(rig)
    invite = await rig.service.invite(DR, cid, "parent", ttl_s=60)
    _, guest = await rig.service.redeem_invite(invite.code, "Mum")
    assert guest.admitted is False
    with pytest.raises(Conflict):
        await rig.service.redeem_invite(invite.code, "Mum again")
    stale = await rig.service.invite(OUTLET, cid, "interpreter", ttl_s=60)
    rig.clock.now += 61
    with pytest.raises(Expired):
        await rig.service.redeem_invite(stale.code, "Late")
    guest_actor = Who(guest.participant_id, Role.GUEST, consultation_id=cid)
    await rig.service.join(guest_actor, cid)
    with pytest.raises(Forbidden):
        await rig.service.require_participant(cid, guest_actor)
    await rig.service.admit(DR, cid, guest.participant_id, True)
    assert (await rig.service.require_participant(cid, guest_actor)).admitted


async def test_appointment_time_reached_goes_ahead(rig: Rig) -> None:
    walk_in = await checked_in(rig)
    rig.clock.now += 60
    booked = await checked_in(rig, appointment_at=rig.clock.now + 600)
    entries = await rig.service.queue_list(DR)
    assert [e.consultation_id for e in entries] == [walk_in, booked]
    rig.clock.now += 601
    entries = await rig.service.queue_list(DR)
    assert [e.consultation_id for e in entries] == [booked, walk_in]


async def test_transfer_to_a_colleague_offers_it_directly(rig: Rig) -> None:
    cid = await active(rig)
    await rig.service.connected(DR2, "sid-2")
    moved = await rig.service.transfer(DR, cid, None, "dr-2")
    assert moved.state is ConsultationState.OFFERED and moved.offered_to == "dr-2" and moved.front
    assert ("left", cid, "dr-1") in rig.hooks.calls
    await rig.service.accept(DR2, cid)
    with pytest.raises(Forbidden):
        await rig.service.join(DR, cid)


async def test_room_everyone_dropped_from_ends_after_the_empty_grace(rig: Rig) -> None:
    cid = await active(rig)
    await rig.service.disconnected(OUTLET, "sid-o")
    await rig.service.disconnected(DR, "sid-d")
    rig.clock.now += 30
    await rig.service.connected(DR, "sid-d2")
    await rig.service.join(DR, cid)
    rig.clock.now += 31
    await rig.service.run_round()
    assert (await rig.service.get(ADMIN, cid)).state is ConsultationState.ACTIVE, "dr came back"
    await rig.service.disconnected(DR, "sid-d2")
    rig.clock.now += 61
    await rig.service.run_round()
    ended = await rig.service.get(ADMIN, cid)
    assert ended.state is ConsultationState.ENDED and ended.ended_reason == "empty"


async def test_a_crashed_process_connections_are_noticed_by_another(
    rig: Rig, store: Store, local_records: Records
) -> None:
    cid = await checked_in(rig)  # outlet connected to the first process, which then dies silently
    config = ServiceConfig(rejoin_grace_s=60, presence_timeout_s=10)
    survivor = ConsultationService(store, local_records.audit, rig.inbox, config, rig.clock)
    rig.clock.now += 5
    await survivor.run_round()
    assert (await survivor.get(ADMIN, cid)).participants["outlet-1"].connected
    rig.clock.now += 6
    await survivor.run_round()
    dropped = (await survivor.get(ADMIN, cid)).participants["outlet-1"]
    assert not dropped.connected and dropped.disconnected_at == rig.clock.now - 11
    rig.clock.now += 50
    await survivor.run_round()
    ended = await survivor.get(ADMIN, cid)
    assert ended.state is ConsultationState.ENDED and ended.ended_reason == "outlet_disconnected"
    await survivor.close()


async def test_the_server_acts_in_the_audit_trail_as_one_system_actor(rig: Rig) -> None:
    cid = await checked_in(rig)
    await rig.service.connected(DR, "sid-d")
    await rig.service.set_presence(DR, PresenceStatus.AVAILABLE)
    await rig.service.run_round()  # offered
    rig.clock.now += 31
    await rig.service.run_round()  # the offer lapses
    await rig.service.disconnected(OUTLET, "sid-o")
    rig.clock.now += 61
    await rig.service.run_round()  # the outlet's grace ends, and with it the request
    events, _ = await rig.service.audit_log(ADMIN, cid)
    assert [(e.action, e.actor, e.role) for e in events] == [
        ("check_in", "outlet-1", "outlet"),
        ("offer", "system", "system"),
        ("offer_withdrawn", "system", "system"),
        ("disconnected", "outlet-1", "outlet"),
        ("leave", "outlet-1", "outlet"),
        ("end", "system", "system"),
    ]
    assert events[-1].details == {"reason": "outlet_disconnected"}
    await rig.service.audit(cid, SYSTEM, AuditAction.RECORDING_DELETED, {"recording_id": "r-1"})
    last, _ = await rig.service.audit_log(ADMIN, cid, cursor=len(events))
    assert [(e.action, e.actor, e.role) for e in last] == [
        ("recording_deleted", "system", "system")
    ]
