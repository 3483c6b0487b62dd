"""State transitions on a consultation copy, shared by the parts that change consultations."""

from __future__ import annotations

from rooms.models import Consultation, ConsultationState, Participant
from rooms.notify import Actor

WAITING, OFFERED = ConsultationState.WAITING, ConsultationState.OFFERED
ACTIVE, ENDED = ConsultationState.ACTIVE, ConsultationState.ENDED


def requeue(c: Consultation) -> None:
    """Back to waiting; ``queued_at`` is untouched, so the request keeps its place."""
    c.state = WAITING
    c.offered_to = None
    c.offer_expires_at = None


def activate(c: Consultation, clinician: Actor, now: float) -> None:
    """The clinician takes the consultation: it becomes active with the clinician in the room."""
    c.state = ACTIVE
    c.clinician_id = clinician.subject
    c.offered_to = None
    c.offer_expires_at = None
    c.front = False
    c.started_at = now
    c.participants[clinician.subject] = Participant(
        clinician.subject, clinician.role, clinician.name, connected=True, joined_at=now
    )
    c.empty_since = None


def finish(c: Consultation, now: float, reason: str) -> None:
    """End the consultation now, clearing any offer and empty-room deadline."""
    c.state = ENDED
    c.ended_at = now
    c.ended_reason = reason
    c.offered_to = None
    c.offer_expires_at = None
    c.empty_since = None


def mark_if_empty(c: Consultation, now: float) -> None:
    """Start an active consultation's empty-room deadline once no admitted participant is
    connected (a queued one has no room yet)."""
    if c.state is ACTIVE and not any(p.connected for p in c.admitted_participants()):
        c.empty_since = c.empty_since or now
