"""Operational HTTP endpoints: health and metrics."""

from __future__ import annotations

import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from web import __version__
from web.keys import registry_key, settings_key, started_at_key


async def healthz(request: web.Request) -> web.Response:
    """Liveness and basic facts: status, version, store backend, uptime."""
    app = request.app
    return web.json_response(
        {
            "status": "ok",
            "version": __version__,
            "store": app[settings_key].store_backend,
            "uptime_s": round(time.monotonic() - app[started_at_key], 3),
        }
    )


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition of this process's metrics."""
    body = generate_latest(request.app[registry_key])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_operational_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
