"""Appointments in Chromium: the outlet books on its appointment desk, the booking shows in
the clinician's day on the console, the kiosk checks the child in with it (offered to the
booked clinician), and an admin reads the dashboard and downloads its CSV."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from benchmarks.browser_call import OUTLET_ID, SPECIALIST_ID, open_desk
from rooms.roles import Role
from tests.browser.harness import DESK_VIEWPORT, KIOSK_VIEWPORT, open_page, screenshot
from tests.conftest import RunningServer
from tests.records.test_appointment_flow import ALL_DAY
from tests.records.test_care_flow import CHILD
from tests.signaling.consultation_peers import Peer

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_book_on_the_desk_see_it_in_the_day_check_in_and_read_the_dashboard(
    browser: Browser, live_server: RunningServer
) -> None:
    doctor = Peer(
        live_server.url,
        live_server.token(Role.SPECIALIST, SPECIALIST_ID, services=["ophthalmology"]),
    )
    outlet = Peer(live_server.url, live_server.token(Role.OUTLET, OUTLET_ID))
    await doctor.connect()
    await outlet.connect()
    try:
        await doctor.ok("schedule.set", {"service": "ophthalmology", "weekly": ALL_DAY})
        child = (await outlet.ok("patient.register", CHILD))["patient"]
    finally:
        await doctor.disconnect()
        await outlet.disconnect()

    token = live_server.token(Role.OUTLET, OUTLET_ID, name="Xinhua Rd post office")
    kiosk = await open_page(
        browser,
        "appointments",
        f"{live_server.url}/outlet/appointments#token={token}",
        KIOSK_VIEWPORT,
    )
    desk = None
    try:
        page = kiosk.page
        await expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
        # The outlet's desk opens in Chinese, as its kiosk; the clerk may switch.
        await expect(page.locator("#book-card h2")).to_have_text("预约就诊")
        await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        await page.get_by_role("button", name="English").click()
        await expect(page.locator("#book-card h2")).to_have_text("Book an appointment")
        await page.get_by_label("Card code").fill(child["card_code"])
        await page.get_by_role("button", name="Find the child").click()
        await expect(page.locator("#patient-found")).to_contain_text("Wang Mei")
        await page.get_by_role("button", name="Show free times").click()
        first = page.locator("#slots button").first
        await expect(first).to_contain_text(SPECIALIST_ID)
        await first.click()
        await page.get_by_role("button", name="Book", exact=True).click()
        await expect(page.locator("#booked")).to_contain_text(f"with {SPECIALIST_ID}")
        booked = page.locator("#today-list li")
        await expect(booked).to_have_count(1)
        await expect(booked).to_contain_text("booked")
        await screenshot(kiosk, "appointments-1-booked")

        desk = await open_desk(browser, live_server)
        day = desk.page.locator("#my-day")
        await expect(day).to_contain_text(OUTLET_ID)
        await expect(day).to_contain_text("booked")
        await screenshot(desk, "appointments-2-day")

        await booked.get_by_role("button", name="Check in").click()
        await expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
        await page.get_by_role("button", name="English").click()
        # The kiosk's start screen lists today's bookings (time and service only).
        today = page.locator("#kiosk-appointments li")
        await expect(today).to_have_count(1)
        await expect(today).to_contain_text("Eyes (ophthalmology)")
        await screenshot(kiosk, "appointments-3-kiosk")
        await page.locator("#start-button").click()
        await expect(page.locator("#check-next")).to_be_enabled(timeout=20_000)
        await page.locator("#check-next").click()
        await page.locator("[data-service=ophthalmology]").click()
        await page.locator("#guardian-present").check()
        await page.locator("#consent-consult").check()
        await page.locator("#check-in").click()
        await expect(page.locator("body")).to_have_attribute("data-screen", "waiting")
        await expect(desk.page.locator("#offer-dialog")).to_be_visible()
        assert (
            await page.evaluate("sessionStorage.getItem('teleconsult.outlet.appointment')") is None
        )
    finally:
        await kiosk.context.close()
        if desk is not None:
            await desk.context.close()

    admin_token = live_server.token(Role.ADMIN, "admin-1", name="Admin")
    admin = await open_page(
        browser, "dashboard", f"{live_server.url}/dashboard#token={admin_token}", DESK_VIEWPORT
    )
    try:
        figures = admin.page.locator("#stats-totals")
        await expect(figures.locator("[data-figure=consultations] dd")).to_have_text("1")
        await expect(figures.locator("[data-figure=appointments] dd")).to_have_text("1")
        assert await admin.page.locator("#chart-weeks").evaluate("c => c.width > 0")
        await screenshot(admin, "appointments-4-dashboard")
        async with admin.page.expect_download() as download_info:
            await admin.page.get_by_role("button", name="Download CSV").click()
        download = await download_info.value
        text = (await download.path()).read_text()
        assert text.splitlines()[0].startswith("group,people_served,consultations,")
        assert text.splitlines()[1].startswith("total,")
        # In Chinese: the headings, the figures' labels and the charts' are translated.
        await admin.page.get_by_role("button", name="中文").click()
        await expect(admin.page.locator("html")).to_have_attribute("lang", "zh-CN")
        await expect(admin.page.locator(".brand")).to_have_text("项目数据看板")
        await expect(figures.locator("[data-figure=consultations] dt")).to_have_text("问诊次数")
        await expect(figures.locator("[data-figure=consultations] dd")).to_have_text("1")
        await screenshot(admin, "appointments-5-dashboard-zh")
    finally:
        await admin.context.close()
