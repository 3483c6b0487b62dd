"""Calls through a real coturn relay in real Chromium: kiosk and console forced to relay-only with
only a TURN/TCP server, the kiosk's pre-call relay check, the console's path label, and a call
that survives ICE restarts when the server renews the TURN credentials."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
import pytest_asyncio
from playwright.async_api import Browser, expect

from rooms.roles import Role
from tests.browser.harness import (
    KIOSK_VIEWPORT,
    open_page,
    screenshot,
    wait_audible,
    wait_moving_video,
)
from tests.browser.test_consultation import (
    CALL_TIMEOUT_MS,
    OUTLET_ID,
    SPECIALIST_ID,
    Call,
    start_call,
    tile,
)
from tests.conftest import RunningServer, free_port, start_server
from tests.coturn import Coturn
from web.settings import Settings

pytestmark = pytest.mark.asyncio(loop_scope="session")

_RELAYED = re.compile(r'teleconsult_media_relayed_sessions_total\{protocol="(\w+)"\} (\d+)')


async def relayed_sessions(server: RunningServer) -> dict[str, int]:
    text = await server.metrics_text()
    return {protocol: int(count) for protocol, count in _RELAYED.findall(text)}


async def wait_relayed(server: RunningServer, at_least: int, timeout_s: float = 40.0) -> int:
    deadline = time.monotonic() + timeout_s
    count = 0
    while time.monotonic() < deadline:
        count = (await relayed_sessions(server)).get("tcp", 0)
        if count >= at_least:
            return count
        await asyncio.sleep(0.5)
    raise AssertionError(f"{count} sessions relayed over TCP, expected {at_least}")


def relay_settings(settings: Settings, coturn: Coturn, ttl_s: float) -> Settings:
    return replace(
        settings,
        turn_urls=(coturn.url("tcp"),),
        turn_secret=coturn.secret,
        turn_ttl_s=ttl_s,
        ice_transport_policy="relay",
    )


@pytest_asyncio.fixture(loop_scope="session")
async def relay_server(browser_settings: Settings, coturn: Coturn) -> AsyncIterator[RunningServer]:
    running = await start_server(relay_settings(browser_settings, coturn, 3600))
    yield running
    await running.runner.cleanup()


@pytest_asyncio.fixture(loop_scope="session")
async def renewing_server(
    browser_settings: Settings, coturn: Coturn
) -> AsyncIterator[RunningServer]:
    running = await start_server(relay_settings(browser_settings, coturn, 16))
    yield running
    await running.runner.cleanup()


async def assert_call_flows(call: Call) -> None:
    await wait_moving_video(call.kiosk, tile(SPECIALIST_ID))
    await wait_moving_video(call.desk, tile(OUTLET_ID))
    assert await wait_audible(call.kiosk, tile(SPECIALIST_ID)) > 0.01
    assert await wait_audible(call.desk, tile(OUTLET_ID)) > 0.01


async def test_relay_only_kiosk_and_console_talk_through_turn_tcp(
    browser: Browser, relay_server: RunningServer
) -> None:
    call = await start_call(browser, relay_server)
    try:
        # The kiosk's pre-call check found the relay reachable over TCP only.
        await expect(call.kiosk.page.locator("#relay-result")).to_have_text(
            "Calls will use the relay server (TCP)"
        )
        await assert_call_flows(call)
        path = call.desk.page.locator(f'[data-participant="{OUTLET_ID}"] .tile-path')
        await expect(path).to_have_text("relay (TCP)", timeout=15_000)
        await expect(path).to_have_attribute("data-path", "relay")
        assert await wait_relayed(relay_server, 2) == 2
        await screenshot(call.desk, "8-call-relayed")
    finally:
        await call.close()


async def test_relayed_call_survives_ice_restart_with_renewed_credentials(
    browser: Browser, renewing_server: RunningServer, coturn: Coturn
) -> None:
    earlier = {subject: coturn.allocations(subject) for subject in (OUTLET_ID, SPECIALIST_ID)}
    call = await start_call(browser, renewing_server)
    try:
        assert await wait_relayed(renewing_server, 2) >= 2
        # Credentials last 16 s and are renewed after 12 s: both pages restart ICE through the
        # relay with the new ones, and the server counts each new relayed media session.
        assert await wait_relayed(renewing_server, 4) >= 4
        await assert_call_flows(call)
        for subject, before in earlier.items():
            # coturn granted relays to two different credentials of each page: the first ones
            # and the renewed ones the ICE restart used.
            assert len(coturn.allocations(subject) - before) >= 2, coturn.allocations(subject)
        for page in (call.kiosk, call.desk):
            log = page.log_tail(400)
            assert "ICE restart with renewed TURN credentials" in log, log
            assert "negotiation failed" not in log
        await expect(
            call.desk.page.locator(f'[data-participant="{OUTLET_ID}"] .tile-path')
        ).to_have_text("relay (TCP)", timeout=CALL_TIMEOUT_MS)
    finally:
        await call.close()


@pytest.mark.parametrize(
    ("transports", "zh_text", "en_text"),
    [
        (("udp", "tcp", "tls"), "可以直接连接", "Direct connection OK"),
        (("closed",), "无法连接中转服务器", "No connection to the relay server"),
    ],
)
async def test_kiosk_check_says_whether_calls_need_the_relay(
    browser: Browser,
    browser_settings: Settings,
    coturn: Coturn,
    transports: tuple[str, ...],
    zh_text: str,
    en_text: str,
) -> None:
    urls = tuple(
        f"turn:127.0.0.1:{free_port()}?transport=tcp" if t == "closed" else coturn.url(t)
        for t in transports
    )
    settings = replace(browser_settings, turn_urls=urls, turn_secret=coturn.secret)
    server = await start_server(settings)
    kiosk = None
    try:
        token = server.token(Role.OUTLET, OUTLET_ID, name="Xinhua Rd")
        kiosk = await open_page(
            browser, "outlet", f"{server.url}/outlet#token={token}", KIOSK_VIEWPORT
        )
        page = kiosk.page
        await expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
        await page.locator("#start-button").click()
        await expect(page.locator("#check-next")).to_be_enabled(timeout=30_000)
        result = page.locator("#relay-result")
        await expect(result).to_be_visible()
        await expect(result).to_contain_text(zh_text)
        await screenshot(kiosk, f"2-relay-check-{transports[0]}")
        await page.get_by_role("button", name="English").click()
        await expect(result).to_contain_text(en_text)
    finally:
        if kiosk is not None:
            await kiosk.context.close()
        await server.runner.cleanup()
