"""Clinician presence: the status a clinician chooses and whether it is online."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import replace

from rooms.config import ServiceConfig
from rooms.models import ClinicianPresence, PresenceStatus
from rooms.notify import Actor
from rooms.pairing import Pairing
from rooms.repository import ConsultationRepository
from rooms.rules import require_clinician, require_grants

logger = logging.getLogger(__name__)


class Presence:
    """Sets a clinician's status and services; marks it (dis)connected without touching them."""

    def __init__(
        self,
        repository: ConsultationRepository,
        pairing: Pairing,
        config: ServiceConfig,
        clock: Callable[[], float],
        wake: Callable[[], None],
    ) -> None:
        self._repository = repository
        self._pairing = pairing
        self._config = config
        self._clock = clock
        self._wake = wake

    async def set_presence(
        self, actor: Actor, status: PresenceStatus, services: Iterable[str] | None = None
    ) -> ClinicianPresence:
        """Set a clinician's status and the services it takes now (a subset of its token's)."""
        require_clinician(actor)
        chosen = tuple(sorted(set(services) if services is not None else actor.services))
        require_grants(actor, chosen)
        now = self._clock()

        def change(previous: ClinicianPresence | None) -> ClinicianPresence:
            keeps_availability = (
                previous is not None
                and previous.status is status
                and previous.is_live(now, self._config.presence_timeout_s)
            )
            return ClinicianPresence(
                clinician_id=actor.subject,
                role=actor.role,
                name=actor.name,
                status=status,
                services=chosen,
                online=True,
                seen_at=now,
                available_since=(
                    previous.available_since if previous and keeps_availability else now
                ),
            )

        presence = await self._repository.update_presence(actor.subject, change)
        assert presence is not None
        logger.info(
            "presence clinician=%s status=%s services=%s",
            actor.subject,
            status.value,
            ",".join(chosen),
        )
        if status is not PresenceStatus.AVAILABLE:
            await self._pairing.withdraw_offers_to(actor.subject, "clinician_" + status.value)
        self._wake()
        return presence

    async def connect(self, actor: Actor, now: float) -> None:
        """Online again; a clinician seen for the first time starts ``away``."""

        def change(previous: ClinicianPresence | None) -> ClinicianPresence:
            presence = previous or ClinicianPresence(
                actor.subject,
                actor.role,
                actor.name,
                PresenceStatus.AWAY,
                tuple(sorted(actor.services)),
                True,
                now,
                now,
            )
            return replace(presence, online=True, seen_at=now)

        await self._repository.update_presence(actor.subject, change)

    async def refresh(self, clinician_id: str, online: bool, now: float) -> None:
        """Mark a clinician (dis)connected without touching the status it chose."""

        def change(current: ClinicianPresence | None) -> ClinicianPresence | None:
            return None if current is None else replace(current, online=online, seen_at=now)

        await self._repository.update_presence(clinician_id, change)
