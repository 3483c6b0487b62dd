"""The one access policy over what a consultation leaves behind: recordings, reports, a
patient's card and history, photos and chat. Every handler and HTTP route asks it.

- recording start, stop: the consultation's own clinician (specialist or counsellor);
- recording list, download: its own clinician, and admins; legal hold: admins only;
- recording state: whoever takes part (its outlet, its clinician, its admitted guests) and admins;
  acknowledge: those who take part, while the consultation is open;
- report write (draft, finalise, amend) and drafts: its own clinician only;
- final report: its own clinician, its outlet, and admins (the family reads it by share code
  and PIN, outside token roles);
- patient register: outlets; patient look-up by card code: any outlet, admins, and a clinician
  treating or offered that patient (as for ``history``);
- history: a clinician treating or offered an open consultation of that patient (or treated one
  whose report may still be written), and admins;
- photos: its own clinician, its outlet, and admins read them; its admitted participants add
  them; its own clinician requests one;
- photos of earlier visits: also a clinician who may read that patient's history (to compare);
- chat: its admitted participants send (during the call) and read; admins read (audited); a
  clinician covering its service, or offered it, may write to its outlet while it still waits.
- clinic hours: an admin for anyone, a clinician for themself, publish them; outlets, clinicians
  and admins read them (an outlet books from them);
- appointments: an outlet books, cancels and lists its own, an admin any outlet's; a clinician
  lists its own; follow-ups due: an outlet its own, admins all;
- programme figures: admins only.
Decrypting a recording file outside the server is an operator's act on the machine that holds
the key, outside token roles.
"""

from __future__ import annotations

from enum import StrEnum

from rooms.errors import Forbidden
from rooms.models import Consultation, ConsultationState
from rooms.notify import Actor
from rooms.roles import Role


class Access(StrEnum):
    """What may be done with a consultation's records."""

    RECORDING_START = "recording_start"
    RECORDING_STOP = "recording_stop"
    RECORDING_LIST = "recording_list"
    RECORDING_DOWNLOAD = "recording_download"
    RECORDING_LEGAL_HOLD = "recording_legal_hold"
    RECORDING_STATE = "recording_state"
    RECORDING_ACKNOWLEDGE = "recording_acknowledge"
    REPORT_WRITE = "report_write"
    REPORT_READ_DRAFT = "report_read_draft"
    REPORT_READ_FINAL = "report_read_final"
    PHOTO_READ = "photo_read"
    PHOTO_ADD = "photo_add"
    PHOTO_REQUEST = "photo_request"
    CHAT = "chat"
    CHAT_WAITING = "chat_waiting"
    CHAT_READ = "chat_read"


_CONTROL = "only this consultation's clinician may control its recording"
_RECORDINGS = "only the consultation's clinician and admins may access recordings"
_TAKING_PART = "only those taking part in this consultation may do that"
_REFUSALS = {
    Access.RECORDING_START: _CONTROL,
    Access.RECORDING_STOP: _CONTROL,
    Access.RECORDING_LIST: _RECORDINGS,
    Access.RECORDING_DOWNLOAD: _RECORDINGS,
    Access.RECORDING_LEGAL_HOLD: "only admins may set a legal hold",
    Access.RECORDING_STATE: _TAKING_PART,
    Access.RECORDING_ACKNOWLEDGE: "only those taking part in an open consultation may do that",
    Access.REPORT_WRITE: "only this consultation's clinician may write its report",
    Access.REPORT_READ_DRAFT: "a draft report is its clinician's alone",
    Access.REPORT_READ_FINAL: "only the consultation's clinician, its outlet and admins may "
    "read its report",
    Access.PHOTO_READ: "only the consultation's clinician, its outlet and admins may see its "
    "photos",
    Access.PHOTO_ADD: _TAKING_PART,
    Access.PHOTO_REQUEST: "only this consultation's clinician may ask for a photo",
    Access.CHAT: _TAKING_PART,
    Access.CHAT_WAITING: "only a clinician covering this service may write to an outlet that waits",
    Access.CHAT_READ: "only those taking part in this consultation, and admins, may read its chat",
}


def own_clinician(actor: Actor, consultation: Consultation) -> bool:
    """The actor is a clinician and treats this consultation."""
    return actor.role.is_clinician and consultation.clinician_id == actor.subject


def own_outlet(actor: Actor, consultation: Consultation) -> bool:
    """The actor is the outlet that checked this consultation in."""
    return actor.role is Role.OUTLET and consultation.outlet_id == actor.subject


def taking_part(actor: Actor, consultation: Consultation) -> bool:
    """Its outlet, its own clinician, or a guest it admitted."""
    if own_outlet(actor, consultation) or own_clinician(actor, consultation):
        return True
    participant = consultation.participants.get(actor.subject)
    return (
        actor.role is Role.GUEST
        and actor.consultation_id == consultation.id
        and participant is not None
        and participant.admitted
    )


def taking_part_subjects(consultation: Consultation) -> set[str]:
    """Who takes part: its outlet, its clinician and its admitted participants."""
    subjects = {consultation.outlet_id}
    if consultation.clinician_id is not None:
        subjects.add(consultation.clinician_id)
    subjects.update(p.participant_id for p in consultation.participants.values() if p.admitted)
    return subjects


def may(actor: Actor, access: Access, consultation: Consultation | None) -> bool:
    """Whether ``actor`` may do ``access`` on ``consultation``'s records (``None``: on records
    of no one consultation, which only an admin reads or holds)."""
    admin = actor.role is Role.ADMIN
    if access is Access.RECORDING_LEGAL_HOLD:
        return admin
    if consultation is None:
        return admin and access in (Access.RECORDING_LIST, Access.RECORDING_DOWNLOAD)
    if access in (Access.RECORDING_START, Access.RECORDING_STOP, Access.REPORT_WRITE):
        return own_clinician(actor, consultation)
    if access in (Access.REPORT_READ_DRAFT, Access.PHOTO_REQUEST):
        return own_clinician(actor, consultation)
    if access in (Access.RECORDING_LIST, Access.RECORDING_DOWNLOAD):
        return admin or own_clinician(actor, consultation)
    if access is Access.RECORDING_STATE:
        return admin or taking_part(actor, consultation)
    if access is Access.CHAT:
        # While it waits no one else is in the room; see CHAT_WAITING for the clinician's note.
        return consultation.state is ConsultationState.ACTIVE and taking_part(actor, consultation)
    if access is Access.CHAT_READ:
        return admin or taking_part(actor, consultation)
    if access is Access.CHAT_WAITING:
        return (
            consultation.state.queued
            and actor.role.is_clinician
            and (consultation.service in actor.services or consultation.offered_to == actor.subject)
        )
    if access in (Access.REPORT_READ_FINAL, Access.PHOTO_READ):
        return admin or own_clinician(actor, consultation) or own_outlet(actor, consultation)
    # Acknowledging and adding a photo are acts of those in an open consultation.
    return consultation.state is not ConsultationState.ENDED and taking_part(actor, consultation)


def require(actor: Actor, access: Access, consultation: Consultation | None) -> None:
    """Raise :class:`~rooms.errors.Forbidden` unless :func:`may` allows it."""
    if not may(actor, access, consultation):
        raise Forbidden(_REFUSALS[access])


def may_read_history(actor: Actor, patient_id: str, consultations: list[Consultation]) -> bool:
    """Admins, or a clinician treating or offered one of ``consultations`` of that patient (the
    caller passes the open ones and those whose report may still be written)."""
    if actor.role is Role.ADMIN:
        return True
    return actor.role.is_clinician and any(
        c.patient_id == patient_id and actor.subject in (c.clinician_id, c.offered_to)
        for c in consultations
    )


def require_history(actor: Actor, patient_id: str, consultations: list[Consultation]) -> None:
    if not may_read_history(actor, patient_id, consultations):
        raise Forbidden(
            "only a clinician treating or offered a consultation of this patient, and admins, "
            "may read the patient's history"
        )


def require_patient_lookup(actor: Actor) -> None:
    """Any outlet (a returning child may come to another outlet), admins, and clinicians (who
    must then also treat, or be offered, that patient: :func:`require_history`)."""
    if actor.role not in (Role.OUTLET, Role.ADMIN) and not actor.role.is_clinician:
        raise Forbidden("only outlets, clinicians and admins may look a patient up by card code")


def require_schedule_write(actor: Actor, clinician_id: str) -> None:
    """An admin for any clinician, a clinician for themself."""
    if actor.role is Role.ADMIN or (actor.role.is_clinician and actor.subject == clinician_id):
        return
    raise Forbidden("only admins, and a clinician for themself, may publish clinic hours")


def require_booking(actor: Actor, outlet_id: str) -> None:
    """An outlet books and cancels for itself; an admin for any outlet."""
    if actor.role is Role.ADMIN or (actor.role is Role.OUTLET and actor.subject == outlet_id):
        return
    raise Forbidden("only the outlet itself, and admins, may book or cancel its appointments")


def require_appointment_list(actor: Actor, outlet_id: str | None, clinician_id: str | None) -> None:
    """Admins list any; an outlet its own; a clinician its own."""
    if actor.role is Role.ADMIN:
        return
    if actor.role is Role.OUTLET and outlet_id == actor.subject and clinician_id is None:
        return
    if actor.role.is_clinician and clinician_id == actor.subject and outlet_id is None:
        return
    raise Forbidden("an outlet lists its own appointments, a clinician its own")


def require_programme_figures(actor: Actor) -> None:
    if actor.role is not Role.ADMIN:
        raise Forbidden("only admins may read the programme figures")
