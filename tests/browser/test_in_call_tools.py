"""The in-call tools in real Chromium: the clinician asks for a photo and the kiosk's fake camera
is captured at its full resolution and shown (and zoomed) in the console; a photo crosses a
250 kbit/s uplink while the call goes on over the weak link; chat both ways in Chinese and
English; screen share on and off."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright, expect

from benchmarks.browser_call import (
    CALL_TIMEOUT_MS,
    CHROMIUM_ARGS,
    OUTLET_ID,
    SPECIALIST_ID,
    check_in,
    open_desk,
    start_call,
    tile,
)
from benchmarks.link_emulator import LinkEmulator, LinkShape
from benchmarks.tcp_shaper import TcpShaper
from benchmarks.weaklink import noisy_jpeg
from rooms.roles import Role
from tests.browser.harness import screenshot, wait_moving_video
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


async def test_a_document_photo_chat_both_ways_in_both_languages_and_screen_share(
    browser: Browser, live_server: RunningServer
) -> None:
    call = await start_call(browser, live_server)
    try:
        desk, kiosk = call.desk.page, call.kiosk.page
        # The guardian holds a prescription to the kiosk's camera.
        await kiosk.get_by_role("button", name="Photograph a document").click()
        await expect(desk.locator("#photo-grid img")).to_have_count(1, timeout=30_000)
        await kiosk.get_by_role("button", name="中文").click()
        await expect(kiosk.locator("#chat-send")).to_have_text("发送")
        await kiosk.locator("#chat-input").fill("医生您好，孩子看不清黑板")
        await kiosk.locator("#chat-send").click()
        await expect(desk.locator("#chat-list")).to_contain_text("医生您好，孩子看不清黑板")
        await desk.locator("#chat-input").fill("Please hold the card at arm's length.")
        await desk.locator("#chat-input").press("Enter")
        await expect(kiosk.locator("#chat-list")).to_contain_text("arm's length")
        await kiosk.get_by_role("button", name="English").click()
        await expect(kiosk.locator("#chat-send")).to_have_text("Post")
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


WEAK = LinkShape(capacity_kbps=250, delay_ms=40, loss=0.01, queue_ms=500)
UPLINK = LinkShape(delay_ms=40)
UPLINK_KBPS = 250


@dataclass
class _ShapedSite:
    """The app as the kiosk reaches it: through the shaped TCP relay."""

    url: str
    server: RunningServer

    def token(self, role: Role, subject: str, **kwargs: Any) -> str:
        return self.server.token(role, subject, **kwargs)


async def test_photos_cross_a_250_kbit_uplink_while_the_call_goes_on(
    browser: Browser, kiosk_browser: Browser, live_server: RunningServer
) -> None:
    async with (
        LinkEmulator(downlink=WEAK, uplink=UPLINK, seed=9) as link,
        TcpShaper(live_server.settings.port, None) as shaper,
    ):
        call = await start_call(
            browser,
            live_server,
            link=link,
            kiosk_site=_ShapedSite(shaper.url, live_server),
            kiosk_browser=kiosk_browser,
        )
        # The kiosk's network check ran on the open path (on a 250 kbit/s uplink it would
        # rightly advise a voice-only call); the photo goes up the weak uplink beside the video.
        shaper.limit(UPLINK_KBPS)
        try:
            desk, kiosk = call.desk.page, call.kiosk.page
            # The clinician asks; the kiosk's camera is captured at its full resolution.
            camera_max = await kiosk.evaluate(_CAMERA_MAX)
            await desk.get_by_role("button", name="Take photo").click()
            thumbs = desk.locator("#photo-grid img")
            await expect(thumbs).to_have_count(1, timeout=60_000)
            assert await kiosk.locator(".photo-tools").get_attribute("data-captured") == (
                f"{camera_max[0]}x{camera_max[1]}"
            )
            await thumbs.first.click()
            await desk.get_by_role("button", name="Zoom in").click()
            await expect(desk.locator("#photo-viewer")).to_have_attribute("data-zoom", "1.5")
            size = await desk.locator("#photo-viewer img").evaluate(
                "i => [i.naturalWidth, i.naturalHeight]"
            )
            assert size == camera_max
            await desk.get_by_role("button", name="Close").click()
            await wait_moving_video(call.kiosk, tile(SPECIALIST_ID))

            # A larger photo from the kiosk's own button: progress at both ends, video moving.
            photo = noisy_jpeg(300)
            sent_before = shaper.pacer.sent
            started = time.monotonic()
            await kiosk.locator("#photo-file").set_input_files(
                files=[{"name": "prescription.jpg", "mimeType": "image/jpeg", "buffer": photo}]
            )
            # The console sees the kiosk's upload advance while it is under way ...
            await expect(desk.locator(".photo-gallery .photo-progress")).to_be_visible(
                timeout=30_000
            )
            # ... and the call's video keeps moving at the kiosk meanwhile.
            await wait_moving_video(call.kiosk, tile(SPECIALIST_ID))
            # The kiosk's network drops for two seconds mid-upload: the page asks the server
            # what it holds and goes on from there.
            await call.kiosk.context.set_offline(True)
            await asyncio.sleep(2.0)
            await call.kiosk.context.set_offline(False)
            await expect(thumbs).to_have_count(2, timeout=90_000)
            took_s = time.monotonic() - started
            await wait_moving_video(call.kiosk, tile(SPECIALIST_ID))
            progress = desk.locator(".photo-gallery .photo-progress")
            assert int(await progress.get_attribute("data-events") or 0) >= 3
            kiosk_progress = kiosk.locator(".photo-tools .photo-progress")
            assert int(await kiosk_progress.get_attribute("data-events") or 0) >= 3
            # Paced by the uplink: the bytes took at least 80 % of their time at 250 kbit/s.
            assert took_s >= 0.8 * len(photo) * 8 / (UPLINK_KBPS * 1000), took_s
            assert int(await kiosk.locator(".photo-tools").get_attribute("data-resumed") or 0) >= 1
            # Not started over: at most a chunk or two (32 KiB each) and the signalling again.
            resent = shaper.pacer.sent - sent_before - len(photo)
            assert 0 <= resent < 100 * 1024, resent
        finally:
            await call.close()


async def test_the_offered_clinician_writes_to_the_waiting_kiosk(
    browser: Browser, live_server: RunningServer
) -> None:
    desk = await open_desk(browser, live_server)
    kiosk = await check_in(browser, live_server)
    try:
        dialog = desk.page.locator("#offer-dialog")
        await expect(dialog).to_be_visible(timeout=CALL_TIMEOUT_MS)
        await dialog.get_by_label("A note to the family waiting").fill(
            "I will be with you in five minutes"
        )
        await dialog.get_by_role("button", name="Write to the family").click()
        await expect(dialog).to_contain_text("Note delivered")
        notes = kiosk.page.locator("#waiting-notes")
        await expect(notes).to_contain_text("I will be with you in five minutes")
        await expect(notes).to_contain_text("Dr Li")
        await screenshot(kiosk, "tools-4-waiting-note")
    finally:
        for handle in (kiosk, desk):
            await handle.context.close()
