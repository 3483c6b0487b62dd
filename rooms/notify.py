"""How the consultation domain tells the outside world: a notifier and consultation listeners."""

from __future__ import annotations

from collections.abc import Set
from typing import TYPE_CHECKING, Any, Protocol

from rooms.roles import Role

if TYPE_CHECKING:
    from rooms.models import Consultation


class Actor(Protocol):
    """Whoever acts on the domain: a verified token identity (``signaling.auth.Identity`` fits)."""

    @property
    def subject(self) -> str: ...

    @property
    def role(self) -> Role: ...

    @property
    def name(self) -> str: ...

    @property
    def services(self) -> Set[str]: ...

    @property
    def consultation_id(self) -> str | None: ...


class Notifier(Protocol):
    """Pushes events to connected clients, wherever (whichever process) they are connected."""

    async def to_subject(self, subject: str, event: str, payload: dict[str, Any]) -> None: ...

    async def to_service(self, service: str, event: str, payload: dict[str, Any]) -> None: ...

    async def to_admins(self, event: str, payload: dict[str, Any]) -> None: ...


class RecordsListener(Protocol):
    """Told of what the records database keeps, with the consultation as it now is: each
    milestone of its visit (checked in, taken, transferred, ended) and each change of the
    guardian's recording consent (given, or withdrawn: ``consultation.consent`` is ``None``)."""

    async def on_visit_changed(self, consultation: Consultation) -> None: ...

    async def on_consent_changed(self, consultation: Consultation, actor: Actor) -> None: ...


class ConsultationListener(Protocol):
    """Told about room changes that other parts (media, recording) must act on."""

    async def on_participant_left(self, consultation_id: str, participant_id: str) -> None:
        """A participant is finally gone: explicit leave, refusal, or rejoin grace expired."""
        ...

    async def on_consultation_ended(self, consultation_id: str) -> None: ...

    async def on_consent_withdrawn(self, consultation_id: str) -> None: ...
