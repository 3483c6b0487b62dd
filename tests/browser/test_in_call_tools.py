"""The in-call tools in real Chromium: the clinician asks for a photo and the kiosk's fake camera
is captured at its full resolution and shown (and zoomed) in the console; chat both ways in
Chinese and English; screen share on and off."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright, expect

from benchmarks.browser_call import CHROMIUM_ARGS, OUTLET_ID, SPECIALIST_ID, start_call
from tests.browser.harness import screenshot
from tests.conftest import RunningServer

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.asyncio(loop_scope="session")

# The largest frame the kiosk's camera reports it can deliver.
_CAMERA_MAX = """() => {
  const track = document.querySelector('#self-view').srcObject.getVideoTracks()[0];
  const caps = track.getCapabilities();
  return [caps.width.max, caps.height.max];
}"""


@pytest_asyncio.fixture(loop_scope="session")
async def kiosk_browser(chromium: Path) -> AsyncIterator[Browser]:
    """A browser of the kiosk's own, so its fake camera is not held at the console's size."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        await launched.close()


async def test_photo_on_request_at_full_resolution_then_zoom(
    browser: Browser, kiosk_browser: Browser, live_server: RunningServer
) -> None:
    call = await start_call(browser, live_server, kiosk_browser=kiosk_browser)
    try:
        desk, kiosk = call.desk.page, call.kiosk.page
        camera_max = await kiosk.evaluate(_CAMERA_MAX)
        await desk.get_by_role("button", name="Take photo").click()
        await expect(kiosk.locator(".photo-countdown")).to_be_visible()
        thumb = desk.locator("#photo-grid img")
        await expect(thumb).to_have_count(1, timeout=30_000)
        captured = await kiosk.locator(".photo-tools").get_attribute("data-captured")
        assert captured == f"{camera_max[0]}x{camera_max[1]}", (captured, camera_max)
        assert int(await kiosk.locator(".photo-progress").get_attribute("data-events") or 0) >= 2
        # The call goes on after the capture: the kiosk's video comes back to the call's size.
        await expect(kiosk.locator(".photo-countdown")).to_be_hidden()
        await expect(desk.locator(".photo-gallery .photo-status")).to_contain_text(
            f"{camera_max[0]} × {camera_max[1]}"
        )
        await thumb.click()
        viewer = desk.locator("#photo-viewer")
        await expect(viewer).to_be_visible()
        size = await viewer.locator("img").evaluate("i => [i.naturalWidth, i.naturalHeight]")
        assert size == camera_max
        await desk.get_by_role("button", name="Zoom in").click()
        await desk.get_by_role("button", name="Zoom in").click()
        await expect(viewer).to_have_attribute("data-zoom", "2")
        await screenshot(call.desk, "tools-1-photo-zoomed")
        await desk.get_by_role("button", name="Close").click()
        await expect(viewer).to_be_hidden()
    finally:
        await call.close()


async def test_chat_both_ways_in_both_languages_and_screen_share(
    browser: Browser, live_server: RunningServer
) -> None:
    call = await start_call(browser, live_server)
    try:
        desk, kiosk = call.desk.page, call.kiosk.page
        await kiosk.get_by_role("button", name="中文").click()
        await expect(kiosk.locator("#chat-send")).to_have_text("发送")
        await kiosk.locator("#chat-input").fill("医生您好，孩子看不清黑板")
        await kiosk.locator("#chat-send").click()
        await expect(desk.locator("#chat-list")).to_contain_text("医生您好，孩子看不清黑板")
        await desk.locator("#chat-input").fill("Please hold the card at arm's length.")
        await desk.locator("#chat-input").press("Enter")
        await expect(kiosk.locator("#chat-list")).to_contain_text("arm's length")
        await kiosk.get_by_role("button", name="English").click()
        await expect(kiosk.locator("#chat-send")).to_have_text("Send")
        await kiosk.locator("#chat-input").fill("OK")
        await kiosk.locator("#chat-send").click()
        await expect(desk.locator("#chat-list li")).to_have_count(3)
        await expect(kiosk.locator("#chat-list li")).to_have_count(3)
        await screenshot(call.kiosk, "tools-2-chat")

        share = desk.locator("#screen-share")
        await share.click()
        await expect(share).to_have_attribute("aria-pressed", "true")
        screen = kiosk.locator("#screen-view")
        await expect(screen).to_be_visible(timeout=30_000)
        await kiosk.wait_for_function(
            "() => document.querySelector('#screen-view').videoWidth > 0", timeout=30_000
        )
        # The clinician's camera tile still plays beside the shared screen.
        await expect(kiosk.locator(f'[data-participant="{SPECIALIST_ID}"] video')).to_be_visible()
        await screenshot(call.kiosk, "tools-3-screen")
        await share.click()
        await expect(share).to_have_attribute("aria-pressed", "false")
        await expect(screen).to_be_hidden(timeout=15_000)
        await share.click()
        await expect(screen).to_be_visible(timeout=30_000)
        await expect(desk.locator(f'[data-participant="{OUTLET_ID}"] video')).to_be_visible()
    finally:
        await call.close()
