"""Queue ordering and wait estimates (pure functions)."""

from __future__ import annotations

from rooms.models import Consultation, ConsultationState
from rooms.queue import DEFAULT_DURATION_S, QueuePolicy, estimate_wait, order_queue, queue_entries

NOW = 1_800_000_000.0
POLICY = QueuePolicy(urgent_head_start_s=1800, appointment_head_start_s=900)


def waiting(cid: str, waited_s: float, **changes: object) -> Consultation:
    c = Consultation(
        id=cid,
        service="paediatrics",
        outlet_id="o-" + cid,
        patient_ref="P",
        guardian_present=True,
        urgent=False,
        appointment_at=None,
        created_at=NOW - waited_s,
        queued_at=NOW - waited_s,
    )
    for key, value in changes.items():
        setattr(c, key, value)
    return c


def ids(items: list[Consultation]) -> list[str]:
    return [c.id for c in items]


def test_longest_waiting_first() -> None:
    queue = [waiting("b", 60), waiting("a", 600), waiting("c", 5)]
    assert ids(order_queue(queue, NOW, POLICY)) == ["a", "b", "c"]


def test_urgent_goes_ahead_of_longer_waiting() -> None:
    queue = [waiting("old", 900), waiting("urgent", 10, urgent=True)]
    assert ids(order_queue(queue, NOW, POLICY)) == ["urgent", "old"]


def test_urgent_does_not_starve_long_waiters() -> None:
    queue = [waiting("old", 1800 + 10 + 1), waiting("urgent", 10, urgent=True)]
    assert ids(order_queue(queue, NOW, POLICY)) == ["old", "urgent"]


def test_due_appointment_goes_ahead_but_future_one_does_not() -> None:
    queue = [
        waiting("walk-in", 300),
        waiting("due", 10, appointment_at=NOW - 1),
        waiting("later", 20, appointment_at=NOW + 3600),
    ]
    assert ids(order_queue(queue, NOW, POLICY)) == ["due", "walk-in", "later"]


def test_transferred_goes_to_the_front_and_ended_or_active_are_left_out() -> None:
    queue = [
        waiting("urgent", 999, urgent=True),
        waiting("moved", 1, front=True),
        waiting("active", 5000, state=ConsultationState.ACTIVE),
        waiting("offered", 50, state=ConsultationState.OFFERED),
    ]
    assert ids(order_queue(queue, NOW, POLICY)) == ["moved", "urgent", "offered"]


def test_ties_break_by_arrival() -> None:
    queue = [waiting("second", 100), waiting("first", 100)]
    queue[1].queued_at -= 0.001
    assert ids(order_queue(queue, NOW, POLICY)) == ["first", "second"]


def test_estimates() -> None:
    assert estimate_wait(1, [], free_clinicians=1, online_clinicians=1) == 0.0
    assert estimate_wait(1, [], free_clinicians=0, online_clinicians=0) is None
    assert estimate_wait(1, [], free_clinicians=0, online_clinicians=2) == DEFAULT_DURATION_S
    assert estimate_wait(3, [600, 900, 300], free_clinicians=0, online_clinicians=2) == 1200
    assert estimate_wait(3, [600], free_clinicians=1, online_clinicians=2) == 600


def test_entries_number_positions_and_waiting_time() -> None:
    ordered = order_queue([waiting("a", 120), waiting("b", 30)], NOW, POLICY)
    entries = queue_entries(ordered, NOW, [600.0], free_clinicians=0, online_clinicians=1)
    assert [(e.consultation_id, e.position) for e in entries] == [("a", 1), ("b", 2)]
    assert entries[0].waiting_s == 120 and entries[1].estimated_wait_s == 1200
    assert entries[0].to_wire()["state"] == "waiting"
