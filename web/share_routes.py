"""The family's copy of a report: ``GET /r/{share_code}`` (the phone page) and
``POST /api/reports/{share_code}`` with ``{"pin"}`` (the report, or a refusal).

A wrong PIN is ``403``; the fifth wrong PIN in a row locks the code (``429`` with
``Retry-After``) for ``report_share_lock_s``; an expired code is ``410``; an unknown one ``404``.
Every read and every refused PIN is audited (:class:`records.care.CareRecord`).
"""

from __future__ import annotations

import re

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from records.errors import ShareLocked
from rooms.errors import DomainError
from signaling.errors import error_payload, to_wire
from web.http_errors import http_status
from web.keys import care_key, settings_key
from web.pages import STATIC_DIR

SHARE_CODE = re.compile(r"^[0-9A-Z]{6,16}$")
_NO_STORE = {"Cache-Control": "no-store"}


class PinRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    pin: str = Field(pattern=r"^[0-9]{4,8}$")


async def share_page(request: web.Request) -> web.StreamResponse:
    """The phone page asking for the PIN (it reads the report with the POST below)."""
    if not SHARE_CODE.match(request.match_info["share_code"]):
        raise web.HTTPNotFound()
    return web.FileResponse(STATIC_DIR / "report.html", headers=_NO_STORE)


async def read_report(request: web.Request) -> web.Response:
    share_code = request.match_info["share_code"]
    if not SHARE_CODE.match(share_code):
        return web.json_response(error_payload("not_found", "no such report"), status=404)
    try:
        body = PinRequest.model_validate(await request.json())
    except ValueError as exc:
        message = to_wire(exc) if isinstance(exc, ValidationError) else None
        return web.json_response(
            message or error_payload("bad_request", 'send JSON {"pin": "123456"}'), status=400
        )
    try:
        report = await request.app[care_key].read_shared(share_code, body.pin)
    except DomainError as exc:
        headers = dict(_NO_STORE)
        if isinstance(exc, ShareLocked):
            headers["Retry-After"] = str(int(request.app[settings_key].report_share_lock_s))
        return web.json_response(to_wire(exc), status=http_status(exc), headers=headers)
    return web.json_response({"report": report.to_wire()}, headers=_NO_STORE)


def add_share_routes(app: web.Application) -> None:
    app.router.add_get("/r/{share_code}", share_page)
    app.router.add_post("/api/reports/{share_code}", read_report)
