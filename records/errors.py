"""Errors of the records package, with fixed codes (``signaling/errors.py`` puts them on the
wire)."""

from __future__ import annotations

from rooms.errors import Conflict, DomainError, InvalidState, LimitReached, StoreUnavailable


class RecordsUnavailable(StoreUnavailable):
    """The records database could not be reached, or a write could not be confirmed."""

    default_message = "the records database is unavailable; try again"


class SealError(Exception):
    """A sealed value cannot be opened: its key is not in the keyring, or it was tampered with
    (or moved to another row or field). A server fault, never a client's."""


class InvalidFindings(DomainError):
    """Report findings that do not fit the service's template."""

    code = "invalid_findings"
    default_message = "the findings do not match this service's report template"


class ReportFinal(InvalidState):
    """A final report is changed only by an amendment."""

    default_message = "this report is final: amend it (with a reason) instead"


class NoDraft(InvalidState):
    default_message = "there is no draft report to finalise: save one first"


class NotFinal(InvalidState):
    default_message = "only a final report can be amended"


class ReportClosed(InvalidState):
    """Past the report window after the consultation ended."""

    default_message = "the report can no longer be written: the consultation ended too long ago"


class UnknownCard(DomainError):
    code = "unknown_card"
    default_message = "no patient has this card code (check the code, or register the child)"


class BadCardCode(DomainError):
    code = "bad_card_code"
    default_message = "this is not a valid card code: a character was mistyped"


class ShareLocked(LimitReached):
    code = "locked"
    default_message = "too many wrong PINs: try again later"


class SlotTaken(Conflict):
    """Another active booking holds this clinician's slot (the unique index refused ours)."""

    default_message = "this slot is already booked: choose another"


class NotASlot(DomainError):
    code = "not_a_slot"
    default_message = "the clinician's hours have no slot starting at that time"


class InvalidSchedule(DomainError):
    code = "invalid_schedule"
    default_message = "these clinic hours cannot be used"


class TooManyBookings(LimitReached):
    code = "too_many_bookings"
    limit = "bookings_per_patient"
    default_message = "this child already has the most appointments to come allowed"
