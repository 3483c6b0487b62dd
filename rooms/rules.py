"""Every access check of the consultation domain: who may see, join, change or end what.

Each check raises :class:`Forbidden` (or, where the request contradicts the consultation's
state, :class:`InvalidState`) and returns nothing; the parts of the service call them before
changing anything.
"""

from __future__ import annotations

from collections.abc import Iterable

from rooms.errors import Forbidden, InvalidState
from rooms.models import Consultation, ConsultationState, Participant
from rooms.notify import Actor
from rooms.roles import Role

ACTIVE = ConsultationState.ACTIVE


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


def require_check_in_for_self(actor: Actor, outlet_id: str) -> None:
    """An outlet checks in for itself only."""
    require_role(actor, Role.OUTLET)
    if outlet_id != actor.subject:
        raise Forbidden("an outlet may only check in for itself")


def require_covers(actor: Actor, service: str) -> None:
    """Refuse a clinician acting on a service its token does not grant."""
    if service not in actor.services:
        raise Forbidden("you do not cover this consultation's service")


def require_grants(actor: Actor, services: Iterable[str]) -> None:
    """Refuse a clinician choosing to cover services its token does not grant."""
    if not set(services) <= actor.services:
        raise Forbidden("you may only cover services your token grants")


def require_caretaker(actor: Actor, c: Consultation) -> None:
    """Its outlet or its treating clinician (consent, invites)."""
    if actor.role is Role.OUTLET:
        require_owner(actor, c)
    else:
        require_clinician(actor)
        require_assigned(actor, c)


def require_may_end(actor: Actor, c: Consultation) -> None:
    """Its outlet, its treating clinician or an admin."""
    if actor.role is Role.ADMIN:
        return
    if actor.role is Role.OUTLET:
        require_owner(actor, c)
    else:
        require_assigned(actor, c)


def require_view(actor: Actor, c: Consultation) -> None:
    """Admins, its outlet, clinicians covering its service or treating it, its own guests."""
    if actor.role is Role.ADMIN:
        return
    if actor.role is Role.OUTLET and c.outlet_id == actor.subject:
        return
    if actor.role.is_clinician and (c.service in actor.services or c.clinician_id == actor.subject):
        return
    if actor.role is Role.GUEST and actor.consultation_id == c.id:
        return
    raise Forbidden("you may not see this consultation")


def require_may_join(actor: Actor, c: Consultation) -> None:
    """Who may enter the room: its outlet (even while it waits), its clinician once the
    consultation is active, a guest that redeemed an invite. Call after :func:`require_view`."""
    if actor.role.is_clinician:
        require_assigned(actor, c)
        if c.state is not ACTIVE:
            raise InvalidState("accept the consultation before joining it")
    elif actor.role is Role.GUEST:
        if actor.subject not in c.participants:
            raise Forbidden("redeem your invite before joining")
    elif actor.role is not Role.OUTLET:
        raise Forbidden("this role does not take part in consultations")


def require_present(participant: Participant | None) -> Participant:
    """A participant joined (connected) and admitted: the one that may send media."""
    if participant is None or not participant.connected:
        raise Forbidden("join the consultation first")
    if not participant.admitted:
        raise Forbidden("wait to be admitted")
    return participant


def visible_services(actor: Actor, service: str | None) -> set[str] | None:
    """The services whose queue the actor may list (``None``: all, for an admin)."""
    if actor.role is Role.ADMIN:
        return None if service is None else {service}
    require_clinician(actor)
    if service is not None and service not in actor.services:
        raise Forbidden("you do not cover that service")
    return {service} if service is not None else set(actor.services)


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
