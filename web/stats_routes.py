"""``GET /api/stats``: the programme figures for an admin bearer token, as JSON or CSV.

Query: ``from`` and ``to`` (local days ``YYYY-MM-DD`` of the ``timezone`` setting, both
included, at most 400 days), optional ``outlet_id``, ``service``, ``clinician_id``,
``group_by`` (``outlet``, ``service`` or ``clinician``) and ``format`` (``json``, ``csv``).
"""

from __future__ import annotations

import csv
import io
import logging
import time
from datetime import date
from typing import Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from records.stats import GroupBy, query_for_days, week_start
from rooms import access
from rooms.audit import AuditAction
from rooms.errors import DomainError
from rooms.models import AuditEvent
from signaling.auth import AuthError
from signaling.errors import error_payload, to_wire
from web.http_errors import http_status
from web.keys import authority_key, records_key, settings_key

logger = logging.getLogger(__name__)

MAX_DAYS = 400
_NO_STORE = {"Cache-Control": "no-store"}
_ID = r"^[A-Za-z0-9._:-]{1,80}$"
CSV_COLUMNS = (
    "people_served",
    "consultations",
    "wait_p50_s",
    "wait_p90_s",
    "length_p50_s",
    "length_p90_s",
    "appointments",
    "no_shows",
    "follow_ups_due",
    "follow_ups_kept",
    "reports_finalised",
    "referrals",
)


class StatsParams(BaseModel):
    """The query string (text only: days are parsed from ISO text)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: date = Field(alias="from")
    to: date
    outlet_id: str | None = Field(default=None, pattern=_ID)
    service: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_-]{1,39}$")
    clinician_id: str | None = Field(default=None, pattern=_ID)
    group_by: GroupBy | None = None
    format: Literal["json", "csv"] = "json"


async def stats(request: web.Request) -> web.Response:
    try:
        identity = request.app[authority_key].verify(_bearer(request))
        access.require_programme_figures(identity)
    except AuthError as exc:
        return web.json_response(error_payload(exc.code, exc.message), status=401)
    except DomainError as exc:
        return web.json_response(to_wire(exc), status=http_status(exc))
    try:
        params = StatsParams.model_validate(dict(request.query))
    except ValidationError as exc:
        return web.json_response(to_wire(exc), status=400)
    days = (params.to - params.from_).days + 1
    if not 1 <= days <= MAX_DAYS:
        return web.json_response(
            error_payload("bad_request", f"from..to spans 1 to {MAX_DAYS} days"), status=400
        )
    zone = ZoneInfo(request.app[settings_key].timezone)
    query = query_for_days(
        params.from_,
        params.to,
        zone,
        params.outlet_id,
        params.service,
        params.clinician_id,
        params.group_by,
    )
    records = request.app[records_key]
    await records.audit.append_patient_event(
        AuditEvent(
            "",
            time.time(),
            identity.subject,
            identity.role.value,
            AuditAction.PROGRAMME_FIGURES_READ.value,
            {
                "from": params.from_.isoformat(),
                "to": params.to.isoformat(),
                "group_by": params.group_by,
                "format": params.format,
            },
        )
    )
    began = time.perf_counter()
    figures = await records.stats.figures(query)
    took_ms = (time.perf_counter() - began) * 1000
    logger.info("programme figures days=%d group_by=%s ms=%.1f", days, params.group_by, took_ms)
    for week in figures["weeks"]:
        week["week_start"] = week_start(query, week["week"], zone).isoformat()
    result: dict[str, Any] = {
        "from": params.from_.isoformat(),
        "to": params.to.isoformat(),
        "timezone": zone.key,
        "group_by": params.group_by,
        "filters": {
            "outlet_id": params.outlet_id,
            "service": params.service,
            "clinician_id": params.clinician_id,
        },
        **figures,
        "query_ms": round(took_ms, 1),
    }
    if params.format == "csv":
        name = f"programme-{params.from_.isoformat()}-{params.to.isoformat()}.csv"
        return web.Response(
            text=to_csv(result),
            content_type="text/csv",
            headers={**_NO_STORE, "Content-Disposition": f'attachment; filename="{name}"'},
        )
    return web.json_response(result, headers=_NO_STORE)


def to_csv(result: dict[str, Any]) -> str:
    """One row for the totals, then one per group; outcomes as ``outcome_<name>`` columns."""
    rows = [{"group": "total", **result["totals"]}] + [
        {**g, "group": g["key"]} for g in result["groups"]
    ]
    outcomes = sorted({name for row in rows for name in row["outcomes"]})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["group", *CSV_COLUMNS, *(f"outcome_{name}" for name in outcomes)])
    for row in rows:
        writer.writerow(
            [
                _cell(row["group"]),
                *("" if row[c] is None else row[c] for c in CSV_COLUMNS),
                *(row["outcomes"].get(name, 0) for name in outcomes),
            ]
        )
    return out.getvalue()


def _cell(value: str) -> str:
    # A spreadsheet would run a cell starting with = + - @ as a formula.
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


def _bearer(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("token_missing", "send Authorization: Bearer <admin token>")
    return token.strip()


def add_stats_routes(app: web.Application) -> None:
    app.router.add_get("/api/stats", stats)
