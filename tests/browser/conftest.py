"""Real Chromium through Playwright against the app served in-process on 127.0.0.1.

One browser per test session (Playwright launches it with a fresh temporary profile); every page
gets its own browser context, so the outlet, the clinician and the guest never share storage.
The browser tests share one event loop (``loop_scope="session"``), because Playwright objects are
bound to the loop that created them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright

from benchmarks.browser_call import CHROMIUM, CHROMIUM_ARGS
from tests.browser.harness import SCREENSHOT_DIR
from tests.conftest import TEST_METRICS_TOKEN, RunningServer, free_port, start_server
from web.settings import Settings


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SCREENSHOT_DIR.is_dir() and any(SCREENSHOT_DIR.glob("*.png")):
        terminalreporter.write_line(f"browser screenshots: {SCREENSHOT_DIR}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is not installed (scripts/test installs it with apt-get)")
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    return CHROMIUM


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        await launched.close()


@pytest.fixture
def browser_settings(tmp_path: Path) -> Settings:
    """Media on 127.0.0.1; grace long enough for a page reload, offers long enough to click."""
    return Settings(
        records_url=f"sqlite:///{tmp_path / 'records.db'}",
        secret="browser-test-secret-" + "y" * 40,
        port=free_port(),
        media_ips=("127.0.0.1",),
        recordings_dir=tmp_path / "recordings",
        offer_timeout_s=30.0,
        rejoin_grace_s=30.0,
        empty_room_grace_s=30.0,
        presence_timeout_s=10.0,
        stats_interval_s=1.0,
        metrics_token=TEST_METRICS_TOKEN,
    )


@pytest_asyncio.fixture(loop_scope="session")
async def live_server(browser_settings: Settings) -> AsyncIterator[RunningServer]:
    running = await start_server(browser_settings)
    yield running
    await running.runner.cleanup()
