"""``POST /api/invites/{code}/redeem``: a guest turns an invite code into a guest token."""

from __future__ import annotations

import logging

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rooms.errors import DomainError
from rooms.roles import Role
from signaling.errors import error_payload, to_wire
from web.http_errors import http_status
from web.keys import authority_key, consultations_key

logger = logging.getLogger(__name__)

GUEST_TOKEN_TTL_S = 4 * 3600


class RedeemRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1, max_length=60)


async def redeem_invite(request: web.Request) -> web.Response:
    """Use an invite once; the answer carries a token valid for that one consultation."""
    try:
        payload = await request.json()
    except ValueError:
        return web.json_response(
            error_payload("bad_request", 'send a JSON object {"name": "..."}'), status=400
        )
    try:
        body = RedeemRequest.model_validate(payload)
    except ValidationError as exc:
        return web.json_response(to_wire(exc), status=400)
    try:
        invite, guest = await request.app[consultations_key].redeem_invite(
            request.match_info["code"], body.name.strip() or "Guest"
        )
    except DomainError as exc:
        return web.json_response(to_wire(exc), status=http_status(exc))
    token = request.app[authority_key].issue(
        Role.GUEST,
        guest.participant_id,
        guest.name,
        ttl_s=GUEST_TOKEN_TTL_S,
        consultation_id=invite.consultation_id,
    )
    return web.json_response(
        {
            "token": token,
            "consultation_id": invite.consultation_id,
            "guest_id": guest.participant_id,
            "guest_role": invite.guest_role,
        }
    )


def add_invite_routes(app: web.Application) -> None:
    app.router.add_post("/api/invites/{code}/redeem", redeem_invite)
