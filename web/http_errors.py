"""The HTTP status of a domain error, decided by its class: the one table every route uses."""

from __future__ import annotations

from records.errors import ImageTooLarge, UnsupportedImage, UploadOffset
from rooms.errors import (
    Conflict,
    DomainError,
    Expired,
    Forbidden,
    InvalidState,
    LimitReached,
    NotFound,
    StoreUnavailable,
)

# Checked in order; a subclass maps like its base unless it comes first.
_STATUS_BY_ERROR: tuple[tuple[type[DomainError], int], ...] = (
    (NotFound, 404),
    (UnsupportedImage, 415),
    (ImageTooLarge, 413),
    (UploadOffset, 416),
    (Forbidden, 403),
    (InvalidState, 409),
    (Conflict, 409),
    (Expired, 410),
    (LimitReached, 429),
    (StoreUnavailable, 503),
)


def http_status(error: DomainError) -> int:
    """``404`` not found, ``415`` not a JPEG or PNG, ``413`` too large, ``416`` a chunk past the
    held bytes, ``403`` forbidden, ``409`` state or conflict, ``410`` expired, ``429``
    limit reached, ``503`` store unreachable; any other refusal ``400``."""
    return next((status for kind, status in _STATUS_BY_ERROR if isinstance(error, kind)), 400)
