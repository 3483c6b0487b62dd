"""Media and recording requests run on the consultation's pinned node, wherever the caller is.

:meth:`PinnedEvents.wrap` is the gateway's event filter in a cluster: ``rtc.*`` and
``recording.*`` events whose consultation is pinned to another node are relayed there (the
caller's ack is that node's answer, or ``unavailable``); ``consultation.accept`` places the
media first; ``admin.overview`` gains the node list. :class:`PinnedListeners` forwards the
consultation's room changes (participant left, ended, consent withdrawn) to its pinned node,
whose media and recording act on them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any, cast

from pydantic import BaseModel, ValidationError

from rooms.errors import DomainError, NodeUnavailable
from rooms.notify import ConsultationListener
from rooms.roles import Role
from signaling.auth import Identity
from signaling.dispatch import Ack, Caller, EventSpec
from signaling.errors import ProtocolError, error_payload, to_wire
from signaling.media_placement import MediaPlacement
from signaling.node_relay import Body, NodeRelay

logger = logging.getLogger(__name__)

PINNED_PREFIXES = ("rtc.", "recording.")
ACCEPT_EVENT = "consultation.accept"
OVERVIEW_EVENT = "admin.overview"


def identity_to_wire(identity: Identity) -> dict[str, Any]:
    return {
        "subject": identity.subject,
        "role": identity.role.value,
        "name": identity.name,
        "services": sorted(identity.services),
        "consultation_id": identity.consultation_id,
        "expires_at": identity.expires_at,
        "token_id": identity.token_id,
    }


def identity_from_wire(data: dict[str, Any]) -> Identity:
    return Identity(
        subject=str(data["subject"]),
        role=Role(data["role"]),
        name=str(data["name"]),
        services=frozenset(str(s) for s in data["services"]),
        consultation_id=data["consultation_id"],
        expires_at=float(data["expires_at"]),
        token_id=str(data["token_id"]),
    )


def _consultation_of(message: BaseModel) -> str:
    return str(getattr(message, "consultation_id"))  # noqa: B009 - every pinned event has one


class PinnedEvents:
    """Wraps event handlers so they run where the consultation's media is."""

    def __init__(self, relay: NodeRelay, placement: MediaPlacement) -> None:
        self._relay = relay
        self._placement = placement
        self._local: dict[str, EventSpec[Any]] = {}
        relay.serve("event", self._serve_event)

    @property
    def node_id(self) -> str:
        return self._relay.node_id

    def wrap(self, specs: Iterable[EventSpec[Any]]) -> list[EventSpec[Any]]:
        """The gateway's event filter (see :meth:`signaling.server.SignalingGateway.add_events`)."""
        wrapped = []
        for spec in specs:
            if spec.name.startswith(PINNED_PREFIXES):
                self._local[spec.name] = spec
                spec = replace(spec, handler=self._routed(spec))
            elif spec.name == ACCEPT_EVENT:
                spec = replace(spec, handler=self._placing(spec))
            elif spec.name == OVERVIEW_EVENT:
                spec = replace(spec, handler=self._with_nodes(spec))
            wrapped.append(spec)
        return wrapped

    def _routed(self, spec: EventSpec[Any]) -> Any:
        async def routed(caller: Caller, message: BaseModel) -> Ack | None:
            consultation_id = _consultation_of(message)
            node = await self._placement.pinned_node(consultation_id)
            if node is None or node == self.node_id:
                return await spec.handler(caller, message)
            body = {
                "event": spec.name,
                "sid": caller.sid,
                "identity": identity_to_wire(caller.identity),
                "payload": message.model_dump(mode="json", exclude_unset=True),
            }
            order = f"{consultation_id}:{caller.identity.subject}"
            return await self._relay.request(node, "event", body, order_key=order)

        return routed

    def _placing(self, spec: EventSpec[Any]) -> Any:
        async def placing(caller: Caller, message: BaseModel) -> Ack | None:
            consultation_id = _consultation_of(message)
            placement = await self._placement.reserve(consultation_id)
            try:
                ack = await spec.handler(caller, message)
            except BaseException:
                await self._placement.release(consultation_id, placement)
                raise
            if ack is not None and "error" in ack:
                await self._placement.release(consultation_id, placement)
            else:
                await self._placement.confirm(consultation_id, placement, caller.identity)
            return ack

        return placing

    def _with_nodes(self, spec: EventSpec[Any]) -> Any:
        async def with_nodes(caller: Caller, message: BaseModel) -> Ack | None:
            ack = await spec.handler(caller, message)
            if ack is not None and isinstance(ack.get("ok"), dict):
                nodes = await self._placement.directory.nodes()
                ack["ok"]["nodes"] = [view.to_wire() for view in nodes]
            return ack

        return with_nodes

    async def _serve_event(self, body: Body) -> Body:
        """Run a relayed event here, as the dispatcher would have on the caller's node."""
        spec = self._local.get(str(body.get("event")))
        if spec is None:
            return error_payload("unknown_event", "this node does not serve that event")
        try:
            caller = Caller(str(body["sid"]), identity_from_wire(body["identity"]))
            message = spec.model.model_validate(body["payload"])
            result = await spec.handler(caller, message)
        except (ProtocolError, DomainError, ValidationError) as exc:
            return to_wire(exc)
        return result if result is not None else {"ok": True}


class PinnedListeners:
    """Registered on the consultation service: tells the pinned node of room changes.

    On the pinned node itself the service's own listeners already acted; elsewhere the change is
    relayed, and the pinned node runs its local media and recording listeners.
    """

    def __init__(
        self,
        relay: NodeRelay,
        placement: MediaPlacement,
        local_listeners: Sequence[ConsultationListener],
    ) -> None:
        self._relay = relay
        self._placement = placement
        self._local = tuple(local_listeners)
        relay.serve("hook", self._serve_hook)

    async def on_participant_left(self, consultation_id: str, participant_id: str) -> None:
        await self._forward(consultation_id, "participant_left", participant_id)

    async def on_consultation_ended(self, consultation_id: str) -> None:
        await self._forward(consultation_id, "consultation_ended")
        await self._placement.directory.unpin(consultation_id)

    async def on_consent_withdrawn(self, consultation_id: str) -> None:
        await self._forward(consultation_id, "consent_withdrawn")

    async def _forward(self, consultation_id: str, hook: str, participant_id: str = "") -> None:
        node = await self._placement.directory.pin_of(consultation_id)
        if node is None or node == self._relay.node_id:
            return
        body = {"hook": hook, "consultation_id": consultation_id, "participant_id": participant_id}
        try:
            await self._relay.request(node, "hook", body, order_key=consultation_id)
        except NodeUnavailable:
            logger.warning(
                "hook not delivered hook=%s consultation=%s node=%s", hook, consultation_id, node
            )

    async def _serve_hook(self, body: Body) -> Body:
        consultation_id = str(body["consultation_id"])
        hook = str(body["hook"])
        for listener in self._local:
            if hook == "participant_left":
                await listener.on_participant_left(consultation_id, str(body["participant_id"]))
            elif hook == "consultation_ended":
                await listener.on_consultation_ended(consultation_id)
            elif hook == "consent_withdrawn":
                await listener.on_consent_withdrawn(consultation_id)
        return cast(Body, {"ok": True})
