"""One table from domain error classes to HTTP statuses, subclasses included."""

from __future__ import annotations

import pytest

from rooms.errors import (
    AuditLimitReached,
    Conflict,
    DomainError,
    Expired,
    Forbidden,
    InvalidState,
    NotFound,
    StoreUnavailable,
    TooManyInvites,
    Unavailable,
)
from web.http_errors import http_status


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotFound(), 404),
        (Forbidden(), 403),
        (InvalidState(), 409),
        (Conflict(), 409),
        (Expired(), 410),
        (TooManyInvites(), 429),
        (AuditLimitReached(), 429),
        (StoreUnavailable(), 503),
        (Unavailable(), 400),
        (DomainError(), 400),
    ],
)
def test_status_of_each_domain_error(error: DomainError, status: int) -> None:
    assert http_status(error) == status
