"""The browser pages: kiosk, clinician console, guest and admin HTML, their static files, the
vendored npm packages (socket.io client, QR code maker and reader) and the small network-check
endpoints the kiosk measures against."""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from signaling.errors import error_payload
from signaling.token_bucket import KeyedBuckets
from web.keys import http_refusals_key, netcheck_limiter_key, settings_key, vendor_files_key
from web.vendor import BrowserFile, VendorFiles, browser_files

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
# Bounds of the network check: enough bytes to see a rural link's bitrate, never a load generator.
MAX_PROBE_KIB = 1024
MAX_UPLOAD_BYTES = 1024 * 1024

_PAGES = {
    "/outlet": "outlet.html",
    "/specialist": "console.html",
    "/counsellor": "console.html",
    "/admin": "admin.html",
    "/dashboard": "dashboard.html",
    "/outlet/appointments": "appointments.html",
}

# Security headers (CSP, referrer policy...) are set on every response by web.security_headers.
_PAGE_HEADERS = {"Cache-Control": "no-store"}


PageHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _page(file_name: str) -> PageHandler:
    path = STATIC_DIR / file_name

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(path, headers=_PAGE_HEADERS)

    return handler


async def vendor_file(request: web.Request) -> web.StreamResponse:
    """A browser build the pages load (:mod:`web.vendor`); a clear 503 when a checkout's
    ``npm ci`` was not run in ``web/``."""
    found = request.app[vendor_files_key].find(
        request.match_info["package"], request.match_info["name"]
    )
    if found is None:
        raise web.HTTPNotFound()
    if isinstance(found, BrowserFile):
        logger.error(
            "%s is not installed: run `npm ci` in web/ (scripts/setup does)", found.package
        )
        return web.Response(
            status=503,
            text=f"{found.package} is not installed on the server: run `npm ci` in web/",
        )
    return web.FileResponse(found, headers={"Cache-Control": "public, max-age=3600"})


async def netcheck_ping(request: web.Request) -> web.Response:
    """A tiny uncached reply: the kiosk times several of these for the round trip."""
    return web.json_response({"ok": True}, headers={"Cache-Control": "no-store"})


async def netcheck_download(request: web.Request) -> web.Response:
    """``?kib=N`` random (incompressible) bytes for measuring the downlink bitrate; a few per
    minute per address (``netcheck_downloads_per_min``), ``429 rate_limited`` beyond."""
    if not request.app[netcheck_limiter_key].take(request.remote or "-"):
        request.app[http_refusals_key].labels("netcheck_download", "rate_limited").inc()
        return web.json_response(
            error_payload("rate_limited", "too many network checks from this address; wait"),
            status=429,
            headers={"Retry-After": "60", "Cache-Control": "no-store"},
        )
    try:
        kib = int(request.query.get("kib", "256"))
    except ValueError:
        raise web.HTTPBadRequest(text="kib must be a whole number") from None
    if not 1 <= kib <= MAX_PROBE_KIB:
        raise web.HTTPBadRequest(text=f"kib must be between 1 and {MAX_PROBE_KIB}")
    return web.Response(
        body=os.urandom(kib * 1024),
        content_type="application/octet-stream",
        headers={"Cache-Control": "no-store"},
    )


async def netcheck_upload(request: web.Request) -> web.Response:
    """Count the bytes of an upload (up to 1 MiB) for measuring the uplink bitrate."""
    received = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        received += len(chunk)
        if received > MAX_UPLOAD_BYTES:
            raise web.HTTPRequestEntityTooLarge(MAX_UPLOAD_BYTES, received)
    return web.json_response({"received": received}, headers={"Cache-Control": "no-store"})


def add_page_routes(app: web.Application) -> None:
    """Serve the pages, ``/static``, the vendored npm packages and the network check."""
    per_min = app[settings_key].netcheck_downloads_per_min
    app[netcheck_limiter_key] = KeyedBuckets(per_min / 60.0, per_min)
    app[vendor_files_key] = VendorFiles(browser_files())
    for url, file_name in _PAGES.items():
        app.router.add_get(url, _page(file_name))
    app.router.add_get("/join/{code}", _page("guest.html"))
    app.router.add_get("/vendor/{package}/{name}", vendor_file)
    app.router.add_get("/api/netcheck/ping", netcheck_ping)
    app.router.add_get("/api/netcheck/download", netcheck_download)
    app.router.add_post("/api/netcheck/upload", netcheck_upload)
    app.router.add_static("/static", STATIC_DIR, append_version=False)
