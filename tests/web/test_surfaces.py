"""HTTP surfaces: security headers everywhere, /metrics closed without its token, netcheck
downloads rate-limited per address, the Socket.IO origin check, secrets and dev links."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import jwt
import pytest

from tests.conftest import RunningServer, start_server
from web.app import socket_origins
from web.security_headers import SECURITY_HEADERS
from web.server import _print_dev_links, is_loopback
from web.settings import Settings, SettingsError

METRICS_TOKEN = "metrics-" + "m" * 40


@pytest.fixture
async def guarded(test_settings: Settings) -> AsyncIterator[RunningServer]:
    settings = replace(test_settings, metrics_token=METRICS_TOKEN, netcheck_downloads_per_min=3)
    running = await start_server(settings)
    yield running
    await running.runner.cleanup()


async def fetch(
    url: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers=headers or {}) as response:
            return response.status, dict(response.headers), await response.read()


@pytest.mark.parametrize(
    "path",
    [
        "/outlet",
        "/join/abc",
        "/healthz",
        "/static/css/app.css",
        "/no/such/page",
        "/api/netcheck/ping",
        "/api/recordings?consultation_id=c-1",
        "/socket.io/?EIO=4&transport=polling",
    ],
)
async def test_every_response_carries_the_security_headers(
    guarded: RunningServer, path: str
) -> None:
    _, headers, _ = await fetch(guarded.url + path)
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, name
    csp = headers["Content-Security-Policy"]
    assert "connect-src 'self';" in csp and "frame-ancestors 'none'" in csp
    assert "ws:" not in csp and "wss:" not in csp


async def test_metrics_are_closed_without_the_token(guarded: RunningServer) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": METRICS_TOKEN}):
        status, _, body = await fetch(f"{guarded.url}/metrics", headers)
        assert status == 401
        assert b"teleconsult_" not in body
    status, _, body = await fetch(
        f"{guarded.url}/metrics", {"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    assert status == 200
    assert b"teleconsult_signaling_events" in body
    assert b'teleconsult_http_refusals_total{reason="unauthorized",route="metrics"} 3.0' in body


async def test_metrics_stay_closed_when_no_token_is_configured(test_settings: Settings) -> None:
    running = await start_server(replace(test_settings, metrics_token=None))
    try:
        status, headers, _ = await fetch(f"{running.url}/metrics")
    finally:
        await running.runner.cleanup()
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")


async def test_netcheck_downloads_are_rate_limited_per_address(guarded: RunningServer) -> None:
    url = f"{guarded.url}/api/netcheck/download?kib=4"
    for _ in range(3):
        status, _, body = await fetch(url)
        assert status == 200 and len(body) == 4096
    status, headers, body = await fetch(url)
    assert status == 429 and headers["Retry-After"]
    assert b'"rate_limited"' in body
    # the ping used for the round trip is not limited
    assert (await fetch(f"{guarded.url}/api/netcheck/ping"))[0] == 200


async def test_socket_origin_defaults_to_the_servers_own(guarded: RunningServer) -> None:
    url = f"{guarded.url}/socket.io/?EIO=4&transport=polling"
    own = f"http://127.0.0.1:{guarded.settings.port}"
    assert (await fetch(url, {"Origin": own}))[0] == 200
    status, _, body = await fetch(url, {"Origin": "https://evil.example"})
    assert status == 400 and b"not an accepted origin" in body


async def test_configured_origins_are_the_only_ones_allowed(test_settings: Settings) -> None:
    allowed = "https://tc.example.org"
    running = await start_server(replace(test_settings, allowed_origins=(allowed,)))
    try:
        url = f"{running.url}/socket.io/?EIO=4&transport=polling"
        assert (await fetch(url, {"Origin": allowed}))[0] == 200
        own = f"http://127.0.0.1:{running.settings.port}"
        assert (await fetch(url, {"Origin": own}))[0] == 400
    finally:
        await running.runner.cleanup()


def test_public_url_gives_the_default_origin() -> None:
    base = Settings(secret="s" * 40)
    assert socket_origins(base) == ()  # engine.io's same-origin check
    assert socket_origins(replace(base, public_url="https://tc.example.org/clinic/")) == (
        "https://tc.example.org",
    )
    explicit = replace(base, public_url="https://a.example", allowed_origins=("https://b.example",))
    assert socket_origins(explicit) == ("https://b.example",)


@pytest.mark.parametrize("secret", ["test", "changeme", "x" * 31, "ü" * 15])
@pytest.mark.parametrize("production", [False, True])
def test_secrets_under_32_bytes_are_refused_in_every_mode(secret: str, production: bool) -> None:
    with pytest.raises(SettingsError, match="32"):
        Settings(secret=secret, production=production).validated()


def test_a_weak_metrics_token_is_refused() -> None:
    with pytest.raises(SettingsError, match="METRICS_TOKEN"):
        Settings(secret="s" * 40, metrics_token="short").validated()


def test_dev_mode_generates_a_strong_secret() -> None:
    settings = Settings().validated()
    assert settings.secret_generated and len(settings.secret.encode()) >= 32


def test_dev_links_are_printed_on_loopback_only_and_short_lived(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = Settings().validated()
    _print_dev_links(settings)
    tokens = [
        line.split("#token=")[1] for line in capsys.readouterr().out.splitlines() if "#" in line
    ]
    assert len(tokens) == 4
    for token in tokens:
        claims = jwt.decode(token, settings.secret, algorithms=["HS256"], issuer="teleconsult")
        assert claims["exp"] - time.time() <= 3600 + 5
    for host in ("0.0.0.0", "192.0.2.10", "example.org", "::"):
        _print_dev_links(replace(settings, host=host))
        printed = capsys.readouterr().out
        assert "#token=" not in printed and "no page links" in printed
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
