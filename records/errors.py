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


class UnsupportedImage(DomainError):
    """Bytes that do not decode as a JPEG or PNG image (HTTP ``415``)."""

    code = "unsupported_media_type"
    default_message = "send a JPEG or PNG image"


class ImageTooLarge(DomainError):
    """More bytes or pixels than the configured limits (HTTP ``413``)."""

    code = "too_large"
    default_message = "the image is larger than this server accepts"


class TooManyPhotos(LimitReached):
    code = "too_many_photos"
    limit = "photos_per_consultation"
    default_message = "this consultation already has the most photos allowed"


class TooManyUploads(LimitReached):
    code = "too_many_uploads"
    limit = "pending_uploads_per_consultation"
    default_message = "too many photo uploads are under way in this consultation; finish one first"


class UploadOffset(DomainError):
    """A chunk that starts past what the server holds (HTTP ``416``, with the held range)."""

    code = "upload_offset"
    default_message = "this chunk starts after the bytes the server holds: resend from there"

    def __init__(self, received: int) -> None:
        super().__init__(f"the server holds {received} bytes: send the chunk starting there")
        self.received = received


class BadAttachment(DomainError):
    code = "bad_attachment"
    default_message = "a report can attach only photos of its own consultation"


class TooManyMessages(LimitReached):
    code = "too_many_messages"
    limit = "chat_messages_per_consultation"
    default_message = "this consultation already holds the most chat messages allowed"


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
