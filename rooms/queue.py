"""Queue ordering and wait estimates, as pure functions.

Ordering: a transferred consultation goes to the front; otherwise each request scores its waiting
time plus a head start (urgent, or its appointment time has come). Because the head start is a
fixed number of seconds, an ordinary request that has waited that much longer than an urgent one
goes first: waiting time keeps growing, so nothing starves.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rooms.models import Consultation, ConsultationState, QueueEntry

DEFAULT_DURATION_S = 15 * 60.0


@dataclass(frozen=True)
class QueuePolicy:
    """How much head start urgent and due requests get over plain waiting time."""

    urgent_head_start_s: float = 30 * 60.0
    appointment_head_start_s: float = 15 * 60.0


def priority(
    consultation: Consultation, now: float, policy: QueuePolicy
) -> tuple[int, float, float]:
    """Sort key (smaller first): front tier, then negative score, then arrival."""
    score = now - consultation.queued_at
    if consultation.urgent:
        score += policy.urgent_head_start_s
    if consultation.appointment_at is not None and consultation.appointment_at <= now:
        score += policy.appointment_head_start_s
    return (0 if consultation.front else 1, -score, consultation.queued_at)


def order_queue(
    consultations: Iterable[Consultation], now: float, policy: QueuePolicy
) -> list[Consultation]:
    """Waiting and offered consultations in the order they should be served."""
    queued = [c for c in consultations if c.state.queued]
    return sorted(queued, key=lambda c: priority(c, now, policy))


def estimate_wait(
    position: int, recent_durations: Sequence[float], free_clinicians: int, online_clinicians: int
) -> float | None:
    """Seconds until the request at ``position`` (1-based) is likely to be taken.

    ``None`` when nobody covering the service is online: there is no honest estimate.
    """
    if position <= free_clinicians:
        return 0.0
    if online_clinicians <= 0:
        return None
    typical = statistics.median(recent_durations) if recent_durations else DEFAULT_DURATION_S
    rounds = math.ceil((position - free_clinicians) / online_clinicians)
    return typical * rounds


def queue_entries(
    ordered: Sequence[Consultation],
    now: float,
    recent_durations: Sequence[float],
    free_clinicians: int,
    online_clinicians: int,
) -> list[QueueEntry]:
    """Wire entries with positions and estimates for an already ordered queue."""
    return [
        QueueEntry(
            consultation_id=c.id,
            service=c.service,
            outlet_id=c.outlet_id,
            urgent=c.urgent,
            appointment_at=c.appointment_at,
            waiting_s=max(0.0, now - c.queued_at),
            position=index,
            state=c.state,
            estimated_wait_s=estimate_wait(
                index, recent_durations, free_clinicians, online_clinicians
            ),
        )
        for index, c in enumerate(ordered, start=1)
    ]


def queue_summary(service: str, entries: Sequence[QueueEntry], first: int) -> dict[str, Any]:
    """The bounded ``queue.changed`` payload: counts per state and the first ``first`` entries.

    Its size does not grow with the queue, however many consultations wait.
    """
    counts = Counter(e.state.value for e in entries)
    return {
        "service": service,
        "total": len(entries),
        "counts": {"waiting": counts["waiting"], "offered": counts["offered"]},
        "entries": [e.to_wire() for e in entries[:first]],
        "truncated": len(entries) > first,
    }


def summary_signature(entries: Sequence[QueueEntry], first: int) -> tuple[Any, ...]:
    """What a clinician's view of a queue summary depends on (to publish only changes)."""
    head = tuple((e.consultation_id, e.position, e.state.value) for e in entries[:first])
    offered = sum(1 for e in entries if e.state is ConsultationState.OFFERED)
    return (len(entries), offered, head)
