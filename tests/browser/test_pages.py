"""The pages on their own: kiosk device check, language switch, sign-in, token handling, and a
clear error when the socket.io client is missing."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from playwright.async_api import Browser, expect

from rooms.roles import Role
from tests.browser.harness import (
    DESK_VIEWPORT,
    KIOSK_VIEWPORT,
    PageHandle,
    open_page,
    screenshot,
    wait_moving_video,
)
from tests.conftest import RunningServer, start_server
from tests.signaling.consultation_peers import Peer
from web.settings import Settings

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_kiosk_device_check_measures_camera_microphone_and_link(
    browser: Browser, live_server: RunningServer
) -> None:
    token = live_server.token(Role.OUTLET, "outlet-0042", name="Xinhua Rd")
    kiosk = await open_page(
        browser, "outlet", f"{live_server.url}/outlet#token={token}", KIOSK_VIEWPORT
    )
    page = kiosk.page
    try:
        await expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
        assert await page.evaluate("window.location.hash") == ""
        assert await page.evaluate("sessionStorage.getItem('teleconsult.outlet.token')") == token
        await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        await screenshot(kiosk, "1-start")

        await page.get_by_role("button", name="English").click()
        await expect(page.locator("section[data-screen=start] h1")).to_have_text(
            "See a specialist by video"
        )
        await page.locator("#start-button").click()
        await expect(page.locator("body")).to_have_attribute("data-screen", "check")
        await wait_moving_video(kiosk, "#preview")
        await expect(page.locator("#check-next")).to_be_enabled(timeout=20_000)
        await expect(page.locator("#net-result")).to_contain_text("ms")
        rtt_text = await page.locator("#net-result").text_content()
        assert rtt_text and "bps" in rtt_text
        loudest = 0.0
        for _ in range(30):
            loudest = max(loudest, float(await page.locator("#mic-level").evaluate("m => m.value")))
            if loudest > 0.01:
                break
            await page.wait_for_timeout(100)
        assert loudest > 0.01, "the microphone meter never moved"
        await screenshot(kiosk, "2-device-check")

        await page.get_by_role("button", name="中文").click()
        await expect(page.locator("section[data-screen=check] h1")).to_have_text(
            "检查摄像头、麦克风和网络"
        )
        await page.locator("#check-next").click()
        await expect(page.locator("body")).to_have_attribute("data-screen", "service")
        await screenshot(kiosk, "3-service-zh")
        await page.locator("[data-service=ophthalmology]").click()
        await expect(page.locator("body")).to_have_attribute("data-screen", "patient")
        await page.locator("[data-patient=none]").click()
        check_in = page.locator("#check-in")
        await expect(check_in).to_be_disabled()
        await page.locator("#guardian-present").check()
        await page.locator("#consent-consult").check()
        await expect(check_in).to_be_enabled()
        await screenshot(kiosk, "4-consent-zh")
    finally:
        await kiosk.context.close()


async def test_clinician_signs_in_with_a_token_and_bad_tokens_are_refused(
    browser: Browser, live_server: RunningServer
) -> None:
    desk = await open_page(browser, "specialist", f"{live_server.url}/specialist", DESK_VIEWPORT)
    page = desk.page
    try:
        await expect(page.locator("body")).to_have_attribute("data-screen", "signin")
        await page.get_by_label("Access token").fill("not-a-token")
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.locator("#alert")).to_contain_text("different page")

        forged = live_server.token(Role.SPECIALIST, "dr-li", name="Dr Li")[:-4] + "AAAA"
        await page.get_by_label("Access token").fill(forged)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.locator("#alert")).to_contain_text("not valid")
        await expect(page.locator("body")).to_have_attribute("data-screen", "signin")

        token = live_server.token(
            Role.SPECIALIST, "dr-li", name="Dr Li", services=["ophthalmology"]
        )
        await page.get_by_label("Access token").fill(token)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
        await expect(page.locator("body")).to_have_attribute("data-screen", "desk")
        await screenshot(desk, "1-signed-in")
        await page.reload()
        await expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
    finally:
        await desk.context.close()


async def test_counsellor_console_uses_the_group_layout(
    browser: Browser, live_server: RunningServer
) -> None:
    token = live_server.token(Role.COUNSELLOR, "cn-wang", name="Ms Wang", services=["counselling"])
    desk = await open_page(
        browser, "counsellor", f"{live_server.url}/counsellor#token={token}", DESK_VIEWPORT
    )
    try:
        page = desk.page
        await expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
        await expect(page.locator("#brand")).to_have_text("Counsellor console")
        await expect(page.locator("#tiles")).to_have_class(re.compile(r"\bgroup\b"))
        await page.get_by_role("button", name="Available").click()
        await expect(page.get_by_role("button", name="Available")).to_have_attribute(
            "aria-pressed", "true"
        )
        await screenshot(desk, "1-desk")
    finally:
        await desk.context.close()


async def test_page_reports_a_missing_socketio_client(
    browser: Browser, live_server: RunningServer
) -> None:
    token = live_server.token(Role.ADMIN, "admin-1")
    context = await browser.new_context()
    page = await context.new_page()
    try:
        await page.route(
            "**/vendor/socket.io/**", lambda route: route.fulfill(status=503, body="missing")
        )
        await page.goto(f"{live_server.url}/admin#token={token}")
        await expect(page.locator("#alert")).to_contain_text("npm ci")
    finally:
        await context.close()


async def test_keyboard_reaches_every_kiosk_control_with_visible_focus(
    browser: Browser, live_server: RunningServer
) -> None:
    token = live_server.token(Role.OUTLET, "outlet-0043")
    kiosk = await open_page(
        browser, "outlet-keyboard", f"{live_server.url}/outlet#token={token}", KIOSK_VIEWPORT
    )
    page = kiosk.page
    try:
        await expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
        reached = set()
        for _ in range(8):
            await page.keyboard.press("Tab")
            focused = await page.evaluate(
                "() => { const e = document.activeElement;"
                " return [e.id || e.dataset.lang || e.className,"
                " getComputedStyle(e).outlineStyle]; }"
            )
            reached.add(focused[0])
            if focused[0] == "start-button":
                assert focused[1] == "solid", "focus is not visible on the start button"
        assert {"start-button", "zh", "en"} <= reached
    finally:
        await kiosk.context.close()


async def test_admin_reads_a_long_audit_trail_page_by_page_and_sees_new_entries(
    browser: Browser, browser_settings: Settings
) -> None:
    running = await start_server(replace(browser_settings, audit_page_max=2))
    outlet = Peer(running.url, running.token(Role.OUTLET, "outlet-7", name="Kiosk 7"))
    admin: PageHandle | None = None
    try:
        await outlet.connect()
        checked = await outlet.ok(
            "consultation.check_in",
            {
                "service": "ophthalmology",
                "outlet_id": "outlet-7",
                "patient_ref": "P-7",
                "guardian_present": True,
            },
        )
        cid = checked["consultation_id"]
        for given in (True, False, True, False):  # 1 check-in + 4 consent entries
            await outlet.ok("consultation.consent", {"consultation_id": cid, "given": given})
        token = running.token(Role.ADMIN, "admin-1", name="Admin")
        admin = await open_page(
            browser, "admin", f"{running.url}/admin#token={token}", DESK_VIEWPORT
        )
        # A waiting consultation is not in the live list: looked up by its id.
        lookup = admin.page.locator("#audit-form")
        await lookup.get_by_label("Consultation id").fill(cid)
        await lookup.get_by_role("button", name="Audit trail").click()
        rows = admin.page.locator("#audit-rows tr")
        more = admin.page.get_by_role("button", name="Show more entries")
        await expect(rows).to_have_count(2)
        await more.click()
        await expect(rows).to_have_count(4)
        await more.click()
        await expect(rows).to_have_count(5)
        await expect(more).to_be_hidden()
        await expect(rows.nth(0)).to_contain_text("check_in")
        # The trail was read to its end: the periodic refresh appends what comes after.
        await outlet.ok("consultation.consent", {"consultation_id": cid, "given": True})
        await expect(rows).to_have_count(6, timeout=10_000)
    finally:
        if admin is not None:
            await admin.context.close()
        await outlet.disconnect()
        await running.runner.cleanup()
