"""Operational HTTP endpoints: health and metrics."""

from __future__ import annotations

import hmac
import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from signaling.errors import error_payload
from web import __version__
from web.keys import (
    http_refusals_key,
    node_state_key,
    registry_key,
    settings_key,
    started_at_key,
)


async def healthz(request: web.Request) -> web.Response:
    """Liveness and basic facts: status, version, store backend, uptime, this node."""
    app = request.app
    return web.json_response(
        {
            "status": "ok",
            "version": __version__,
            "store": app[settings_key].store_backend,
            "uptime_s": round(time.monotonic() - app[started_at_key], 3),
            "node": app[node_state_key].health(),
        }
    )


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition of this process's metrics, for ``Authorization: Bearer
    <metrics_token>`` only; without a configured token the endpoint stays closed."""
    token = request.app[settings_key].metrics_token
    given = request.headers.get("Authorization", "")
    if token is None or not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        request.app[http_refusals_key].labels("metrics", "unauthorized").inc()
        reason = "set metrics_token to open /metrics" if token is None else "bad metrics token"
        return web.json_response(
            error_payload("unauthorized", reason),
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    body = generate_latest(request.app[registry_key])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_operational_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
