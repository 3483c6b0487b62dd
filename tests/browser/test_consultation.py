"""Whole consultations in real Chromium: kiosk check-in to call and back to start, a guest joining
by invite, and a kiosk reload that rejoins mid-call. Video must move and audio must be heard."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, expect

from benchmarks.browser_call import (
    CALL_TIMEOUT_MS,
    OUTLET_ID,
    SPECIALIST_ID,
    Call,
    check_in,
    open_desk,
    start_call,
    tile,
)
from rooms.roles import Role
from tests.browser.harness import (
    DESK_VIEWPORT,
    PHONE_VIEWPORT,
    PageHandle,
    open_page,
    screenshot,
    wait_audible,
    wait_moving_video,
)
from tests.conftest import RunningServer

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_outlet_and_specialist_see_and_hear_each_other_then_kiosk_resets(
    browser: Browser, live_server: RunningServer
) -> None:
    call = await start_call(browser, live_server, at_step=screenshot)
    try:
        assert await wait_audible(call.kiosk, tile(SPECIALIST_ID)) > 0.01
        assert await wait_audible(call.desk, tile(OUTLET_ID)) > 0.01
        await expect(
            call.desk.page.locator(f'[data-participant="{OUTLET_ID}"] .tile-quality')
        ).to_contain_text("ms", timeout=15_000)
        await screenshot(call.kiosk, "6-call")
        await screenshot(call.desk, "3-call")

        await call.desk.page.get_by_role("textbox", name="Session notes").fill(
            "Visual acuity 6/9 both eyes; review in 3 months."
        )
        await call.desk.page.get_by_role("button", name="Save notes").click()
        await expect(call.desk.page.locator("#notes-status")).to_contain_text("Saved")

        admin_token = live_server.token(Role.ADMIN, "admin-1", name="Admin")
        admin = await open_page(
            browser, "admin", f"{live_server.url}/admin#token={admin_token}", DESK_VIEWPORT
        )
        try:
            live_row = admin.page.locator("#live-rows tr")
            await expect(live_row).to_have_count(1)
            await expect(live_row).to_contain_text(OUTLET_ID)
            await expect(admin.page.locator(f'[data-clinician="{SPECIALIST_ID}"]')).to_contain_text(
                "Dr Li"
            )
            await live_row.get_by_role("button", name="Audit trail").click()
            audit = admin.page.locator("#audit-rows")
            for action in ("check_in", "accept", "join", "notes"):
                await expect(audit).to_contain_text(action)
            await screenshot(admin, "1-overview-audit")
        finally:
            await admin.context.close()

        await call.desk.page.get_by_role("button", name="End").click()
        await expect(call.kiosk.page.locator("body")).to_have_attribute("data-screen", "ended")
        await screenshot(call.kiosk, "7-ended")
        await expect(call.kiosk.page.locator("body")).to_have_attribute(
            "data-screen", "start", timeout=15_000
        )
        await expect(call.kiosk.page.locator("#tiles video")).to_have_count(0)
        await expect(call.desk.page.locator("#idle")).to_be_visible()
    finally:
        await call.close()


async def test_guest_joins_by_invite_after_admission_and_sees_both(
    browser: Browser, live_server: RunningServer
) -> None:
    call = await start_call(browser, live_server, record=True)
    guest = None
    try:
        desk = call.desk.page
        record = desk.get_by_role("button", name="Record")
        await expect(record).to_be_enabled()
        await record.click()
        await expect(call.kiosk.page.locator("#recording-indicator")).to_be_visible()
        await expect(desk.locator("#recording-indicator")).to_be_visible()
        await desk.get_by_role("button", name="Invite a parent").click()
        await expect(desk.locator("#invite-url")).to_have_value(
            re.compile(rf"^{re.escape(live_server.url)}/join/\S+$")
        )
        invite_url = await desk.locator("#invite-url").input_value()
        await screenshot(call.desk, "4-invite")

        guest = await open_page(browser, "guest", invite_url, PHONE_VIEWPORT)
        await wait_moving_video(guest, "#preview")
        await guest.page.get_by_label("Your name").fill("Mother")
        await screenshot(guest, "1-check")
        await guest.page.get_by_role("button", name="Join").click()
        await expect(guest.page.locator("body")).to_have_attribute("data-screen", "door")
        await screenshot(guest, "2-door")

        door = desk.locator("#door-list li")
        await expect(door).to_contain_text("Mother")
        await screenshot(call.desk, "5-door")
        await door.get_by_role("button", name="Admit").click()
        await expect(guest.page.locator("body")).to_have_attribute(
            "data-screen", "call", timeout=CALL_TIMEOUT_MS
        )
        notice = guest.page.locator("#recording-notice")
        await expect(notice).to_be_visible()
        await screenshot(guest, "3-recording-notice")
        await guest.page.get_by_role("button", name="I understand").click()
        await expect(notice).to_be_hidden()
        await expect(guest.page.locator("#recording-indicator")).to_be_visible()
        guest_id = await door_guest_id(call)
        await wait_moving_video(guest, tile(SPECIALIST_ID))
        await wait_moving_video(guest, tile(OUTLET_ID))
        assert await wait_audible(guest, tile(SPECIALIST_ID)) > 0.01
        await wait_moving_video(call.desk, tile(guest_id))
        await wait_moving_video(call.kiosk, tile(guest_id))
        await screenshot(guest, "4-call")
        await screenshot(call.desk, "6-call-with-guest")
        await screenshot(call.kiosk, "8-call-with-guest")
        for handle in (guest, call.desk, call.kiosk):
            await mute_label_survives_a_language_switch(handle)
    finally:
        if guest is not None:
            await guest.context.close()
        await call.close()


async def mute_label_survives_a_language_switch(handle: PageHandle) -> None:
    """Every page's mute button keeps the label of its state when the language changes."""
    page = handle.page
    mute = page.locator("#mute")
    await mute.click()
    await expect(mute).to_have_attribute("aria-pressed", "true")
    await expect(mute).to_have_text("Unmute")
    await page.get_by_role("button", name="中文").click()
    await expect(mute).to_have_text("取消静音")
    await expect(page.locator("#camera")).to_have_text("关闭摄像头")
    await page.get_by_role("button", name="English").click()
    await expect(mute).to_have_text("Unmute")
    await mute.click()
    await expect(mute).to_have_attribute("aria-pressed", "false")
    await expect(mute).to_have_text("Mute")


async def door_guest_id(call: Call) -> str:
    """The guest's participant id, from the tiles the specialist's page now shows."""
    locator = call.desk.page.locator("#tiles [data-participant^='guest-']")
    await expect(locator).to_have_count(1, timeout=CALL_TIMEOUT_MS)
    value = await locator.get_attribute("data-participant")
    assert value
    return value


async def test_kiosk_reload_mid_call_rejoins_and_video_resumes(
    browser: Browser, live_server: RunningServer
) -> None:
    call = await start_call(browser, live_server)
    try:
        await call.kiosk.page.reload()
        await expect(call.kiosk.page.locator("body")).to_have_attribute(
            "data-screen", "call", timeout=CALL_TIMEOUT_MS
        )
        await wait_moving_video(call.kiosk, tile(SPECIALIST_ID))
        frames_before = await call.desk.page.evaluate(
            "(s) => document.querySelector(s).getVideoPlaybackQuality().totalVideoFrames",
            tile(OUTLET_ID),
        )
        await wait_moving_video(call.desk, tile(OUTLET_ID))
        frames_after = await call.desk.page.evaluate(
            "(s) => document.querySelector(s).getVideoPlaybackQuality().totalVideoFrames",
            tile(OUTLET_ID),
        )
        assert frames_after > frames_before
        assert await wait_audible(call.desk, tile(OUTLET_ID)) > 0.01
        await screenshot(call.kiosk, "9-after-reload")
    finally:
        await call.close()


async def test_kiosk_shows_reconnecting_after_a_network_drop_and_recovers(
    browser: Browser, live_server: RunningServer
) -> None:
    call = await start_call(browser, live_server)
    try:
        await call.kiosk.context.set_offline(True)
        await expect(call.kiosk.page.locator("#connection")).to_have_attribute(
            "data-state", "disconnected", timeout=CALL_TIMEOUT_MS
        )
        await expect(call.kiosk.page.locator("#reconnecting")).to_be_visible()
        await screenshot(call.kiosk, "10-reconnecting")
        await call.kiosk.context.set_offline(False)
        await expect(call.kiosk.page.locator("#connection")).to_have_attribute(
            "data-state", "connected", timeout=CALL_TIMEOUT_MS
        )
        await expect(call.kiosk.page.locator("#reconnecting")).to_be_hidden(timeout=CALL_TIMEOUT_MS)
        await wait_moving_video(call.kiosk, tile(SPECIALIST_ID))
        await wait_moving_video(call.desk, tile(OUTLET_ID))
    finally:
        await call.close()


async def test_voice_only_kiosk_sends_and_receives_sound_without_video(
    browser: Browser, live_server: RunningServer
) -> None:
    desk = await open_desk(browser, live_server)
    kiosk = await check_in(browser, live_server, audio_only=True)
    try:
        await expect(desk.page.locator("#offer-dialog")).to_be_visible(timeout=CALL_TIMEOUT_MS)
        await desk.page.get_by_role("button", name="Accept").click()
        await expect(kiosk.page.locator("body")).to_have_attribute("data-screen", "call")
        assert await wait_audible(desk, tile(OUTLET_ID)) > 0.01
        assert await wait_audible(kiosk, tile(SPECIALIST_ID)) > 0.01
        await expect(kiosk.page.locator("#self-view")).to_be_hidden()
        kinds = await desk.page.evaluate(
            "(s) => document.querySelector(s).srcObject.getTracks().map((t) => t.kind)",
            tile(OUTLET_ID),
        )
        assert kinds == ["audio"]
        # The kiosk asked for sound only: the specialist's video is not forwarded to it.
        count_frames = "(s) => document.querySelector(s).getVideoPlaybackQuality().totalVideoFrames"
        frames_before = await kiosk.page.evaluate(count_frames, tile(SPECIALIST_ID))
        await kiosk.page.wait_for_timeout(1500)
        assert await kiosk.page.evaluate(count_frames, tile(SPECIALIST_ID)) == frames_before
        await expect(
            kiosk.page.locator(f'[data-participant="{SPECIALIST_ID}"] .tile-voice')
        ).to_be_visible()
        await screenshot(kiosk, "11-voice-only")
    finally:
        await kiosk.context.close()
        await desk.context.close()


async def test_declined_offer_stays_queued_and_can_be_taken_from_the_queue(
    browser: Browser, live_server: RunningServer
) -> None:
    desk = await open_desk(browser, live_server)
    kiosk = await check_in(browser, live_server)
    try:
        dialog = desk.page.locator("#offer-dialog")
        await expect(dialog).to_be_visible(timeout=CALL_TIMEOUT_MS)
        await desk.page.get_by_role("button", name="Decline").click()
        await expect(dialog).to_be_hidden()
        await expect(kiosk.page.locator("body")).to_have_attribute("data-screen", "waiting")
        row = desk.page.locator("#queue-rows tr", has_text=OUTLET_ID)
        take = row.get_by_role("button", name=f"Take the consultation from {OUTLET_ID}")
        await expect(take).to_be_visible(timeout=CALL_TIMEOUT_MS)
        await screenshot(desk, "7-queue-after-decline")
        await take.click()
        await expect(kiosk.page.locator("body")).to_have_attribute(
            "data-screen", "call", timeout=CALL_TIMEOUT_MS
        )
        await wait_moving_video(kiosk, tile(SPECIALIST_ID))
        await wait_moving_video(desk, tile(OUTLET_ID))
    finally:
        await kiosk.context.close()
        await desk.context.close()
