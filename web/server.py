"""Run the application on uvloop until interrupted, then shut everything down cleanly."""

from __future__ import annotations

import asyncio
import ipaddress
import logging

from aiohttp import web

from rooms.roles import Role
from signaling.auth import TokenAuthority
from web.app import create_app
from web.logging_setup import configure_logging
from web.settings import Settings

logger = logging.getLogger(__name__)

# aiohttp waits this long for open requests after on_shutdown, then as long again after
# cancelling them. Socket.IO connections are told to close in on_shutdown, but a client that
# does not answer the websocket close would hold its handler for the whole wait; downloads can
# resume with Range. The whole shutdown (recordings finalised, peers closed) must fit in 5 s.
SHUTDOWN_TIMEOUT_S = 0.5


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported platform
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a listen address or name) is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _print_dev_links(settings: Settings) -> None:
    """In dev mode nobody else knows the secret, so hand out ready-made page links, short-lived,
    and only while the server listens on a loopback address (nobody else can use them)."""
    if not is_loopback(settings.host):
        print(
            f"Dev mode on {settings.host}: no page links printed (they would carry admin tokens "
            "to a network address); mint tokens with `teleconsult token` and a configured secret.",
            flush=True,
        )
        return
    authority = TokenAuthority(settings.secret)
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    samples = [
        ("outlet", Role.OUTLET, "outlet-demo", ()),
        ("specialist", Role.SPECIALIST, "specialist-demo", ("ophthalmology", "paediatrics")),
        ("counsellor", Role.COUNSELLOR, "counsellor-demo", ("counselling",)),
        ("admin", Role.ADMIN, "admin-demo", ()),
    ]
    print("Dev mode: the secret was generated for this process. Open these pages:", flush=True)
    for page, role, subject, services in samples:
        token = authority.issue(role, subject, subject, services, ttl_s=settings.dev_link_ttl_s)
        print(f"  {page:<11} {base}/{page}#token={token}", flush=True)


def run_server(settings: Settings, reuse_port: bool = False) -> None:
    """Serve until SIGINT/SIGTERM; cleanup contexts close peers, tasks and the store.

    ``reuse_port``: share the HTTP port with sibling worker processes (``--workers``).
    """
    configure_logging(settings.log_level)
    loop = _new_event_loop()
    asyncio.set_event_loop(loop)
    app = create_app(settings)
    if settings.secret_generated and not reuse_port:
        _print_dev_links(settings)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        loop=loop,
        print=None,
        access_log=None,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        reuse_port=reuse_port or None,
    )
    loop.close()
