"""Access checks and state transitions on a consultation, shared by the service modules."""

from __future__ import annotations

from rooms.errors import Forbidden
from rooms.models import Consultation, ConsultationState
from rooms.notify import Actor
from rooms.roles import Role

WAITING, OFFERED = ConsultationState.WAITING, ConsultationState.OFFERED
ACTIVE, ENDED = ConsultationState.ACTIVE, ConsultationState.ENDED


def require_role(actor: Actor, role: Role) -> None:
    """Refuse unless the actor has exactly that role."""
    if actor.role is not role:
        raise Forbidden(f"only the {role.value} role may do that")


def require_clinician(actor: Actor) -> None:
    """Refuse unless the actor is a specialist or counsellor."""
    if not actor.role.is_clinician:
        raise Forbidden("only specialists and counsellors may do that")


def require_owner(actor: Actor, c: Consultation) -> None:
    """Refuse unless the actor is the outlet that checked the consultation in."""
    if actor.role is not Role.OUTLET or c.outlet_id != actor.subject:
        raise Forbidden("this consultation belongs to another outlet")


def require_assigned(actor: Actor, c: Consultation) -> None:
    """Refuse unless the actor is the consultation's clinician."""
    if c.clinician_id != actor.subject:
        raise Forbidden("you are not the clinician of this consultation")


def requeue(c: Consultation) -> None:
    """Back to waiting; ``queued_at`` is untouched, so the request keeps its place."""
    c.state = WAITING
    c.offered_to = None
    c.offer_expires_at = None


def finish(c: Consultation, now: float, reason: str) -> None:
    """End the consultation now, clearing any offer and empty-room deadline."""
    c.state = ENDED
    c.ended_at = now
    c.ended_reason = reason
    c.offered_to = None
    c.offer_expires_at = None
    c.empty_since = None


def mark_if_empty(c: Consultation, now: float) -> None:
    """Start the empty-room deadline once no admitted participant is connected."""
    if not any(p.connected for p in c.admitted_participants()):
        c.empty_since = c.empty_since or now


def concerns(actor: Actor, c: Consultation) -> bool:
    """Whether the consultation is the actor's own (to resume on reconnect)."""
    if actor.role is Role.OUTLET:
        return c.outlet_id == actor.subject
    if actor.role.is_clinician:
        return actor.subject in (c.clinician_id, c.offered_to)
    if actor.role is Role.GUEST:
        return c.id == actor.consultation_id and actor.subject in c.participants
    return False


def audience(c: Consultation) -> list[str]:
    """Who hears about a consultation: its outlet, clinician and admitted participants."""
    subjects = [c.outlet_id]
    subjects += [s for s in (c.clinician_id,) if s]
    subjects += [
        p.participant_id
        for p in c.participants.values()
        if p.admitted and p.participant_id not in subjects
    ]
    return list(dict.fromkeys(subjects))
