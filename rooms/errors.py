"""Domain errors with fixed codes.

``signaling.errors`` is the only place that turns them into wire payloads.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the consultation domain raises on purpose."""

    code = "domain_error"
    default_message = "the request could not be carried out"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)
        self.message = message or self.default_message


class NotFound(DomainError):
    code = "not_found"
    default_message = "no such consultation, invite or recording"


class Forbidden(DomainError):
    code = "forbidden"
    default_message = "this role may not do that"


class InvalidState(DomainError):
    code = "invalid_state"
    default_message = "the consultation is not in a state that allows this"


class Conflict(DomainError):
    code = "conflict"
    default_message = "someone else changed this first"


class Expired(DomainError):
    code = "expired"
    default_message = "this has expired"


class Unavailable(DomainError):
    code = "unavailable"
    default_message = "nobody is available for that right now"


class StoreUnavailable(DomainError):
    """The store (Redis) cannot be reached; the request may be retried once it is back."""

    code = "unavailable"
    default_message = "the consultation store is unreachable; try again shortly"


class LimitReached(DomainError):
    """A client tried to grow a bounded resource past its configured limit."""

    code = "limit_reached"
    limit = "unnamed"


class TooManyOpenConsultations(LimitReached):
    code = "too_many_open_consultations"
    limit = "open_consultations_per_outlet"
    default_message = "this outlet already has the most open consultations allowed"


class TooManyInvites(LimitReached):
    code = "too_many_invites"
    limit = "invites_per_consultation"
    default_message = "this consultation already has the most outstanding invites allowed"


class AuditLimitReached(LimitReached):
    code = "too_many_repeats"
    limit = "audit_entries_per_action"
    default_message = "this action was repeated too often on this consultation"


class ClusterFull(DomainError):
    """Every live media node carries as many consultations as it may: nothing can be placed."""

    code = "cluster_full"
    default_message = (
        "every media server is at its capacity; the consultation stays in the queue, try again"
    )


class NodeUnavailable(DomainError):
    """The node carrying a consultation's media did not answer in time; the request may be
    retried (a lost node's consultations move to another node within seconds)."""

    code = "unavailable"
    default_message = "the media server of this consultation did not answer in time; try again"
