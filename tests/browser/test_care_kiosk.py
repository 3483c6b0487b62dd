"""The kiosk's patient step in real Chromium: a new child registered with the guardian's record
consent gets a printed card with a QR code of its number; a returning child is found by the
number typed or by the card's QR code held up to the camera; the check-in names the patient."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import segno
from playwright.async_api import Browser, async_playwright, expect

from benchmarks.browser_call import CHROMIUM, CHROMIUM_ARGS
from rooms.roles import Role
from tests.browser.care_pages import (
    page_faults,
    pdf_text,
    print_pdf,
    read_qr,
    to_patient_step,
)
from tests.browser.harness import KIOSK_VIEWPORT, PageHandle, open_page, screenshot
from tests.conftest import RunningServer
from tests.signaling.consultation_peers import Peer

pytestmark = pytest.mark.asyncio(loop_scope="session")

OUTLET = "outlet-0042"
CARD_CODE = re.compile(r"^[0-9A-Z]{4}-[0-9A-Z]{3}[0-9A-Z*~$=]$")
CHILD = {"display_name": "Li Hua", "birth_year": 2016, "sex": "male", "record_consent": True}


async def open_kiosk(browser: Browser, server: RunningServer, name: str) -> PageHandle:
    token = server.token(Role.OUTLET, OUTLET, name="Xinhua Rd post office")
    return await open_page(browser, name, f"{server.url}/outlet#token={token}", KIOSK_VIEWPORT)


async def visits_of(server: RunningServer, card_code: str) -> list[dict[str, Any]]:
    """The patient's visits as the records hold them (read by an admin)."""
    admin = Peer(server.url, server.token(Role.ADMIN, "admin-1", name="Admin"))
    await admin.connect()
    try:
        patient = (await admin.ok("patient.lookup", {"card_code": card_code}))["patient"]
        history = await admin.ok("patient.history", {"patient_id": patient["patient_id"]})
        visits: list[dict[str, Any]] = history["visits"]
        return visits
    finally:
        await admin.disconnect()


async def registered_elsewhere(server: RunningServer) -> dict[str, Any]:
    """A child registered at another outlet (a card works at every outlet)."""
    outlet = Peer(server.url, server.token(Role.OUTLET, "outlet-7"))
    await outlet.connect()
    try:
        patient: dict[str, Any] = (await outlet.ok("patient.register", CHILD))["patient"]
        return patient
    finally:
        await outlet.disconnect()


async def check_in_from_consent(kiosk: PageHandle) -> None:
    page = kiosk.page
    await page.locator("#guardian-present").check()
    await page.locator("#consent-consult").check()
    await page.locator("#check-in").click()
    await expect(page.locator("body")).to_have_attribute("data-screen", "waiting")


async def test_a_new_child_is_registered_and_gets_a_printed_card(
    browser: Browser, live_server: RunningServer
) -> None:
    kiosk = await open_kiosk(browser, live_server, "kiosk-new-child")
    page = kiosk.page
    try:
        await to_patient_step(page)  # in Chinese, the kiosk's language
        await screenshot(kiosk, "1-patient-zh")
        await page.locator("[data-patient=new]").click()
        await page.get_by_label("孩子的名字").fill("王小明")
        await page.get_by_label("出生年份").fill("2019")
        await page.get_by_label("男孩").check()
        await page.get_by_label("电话号码").fill("+86 138 0000 2222")
        submit = page.get_by_role("button", name="登记并制作就诊卡")
        await expect(submit).to_be_disabled()  # until the guardian consents to the record
        await page.get_by_label("我同意本服务保存孩子的就诊记录").check()
        await page.get_by_label("出生年份").fill("1890")
        await submit.click()
        await expect(page.locator("#register-message")).to_contain_text("出生年份")
        await page.get_by_label("出生年份").fill("2019")
        await screenshot(kiosk, "2-register-zh")
        await submit.click()

        await expect(page.locator("body")).to_have_attribute("data-screen", "card")
        code = (await page.locator("#card-code").text_content()) or ""
        assert CARD_CODE.match(code), code
        await expect(page.locator("#card-name")).to_have_text("王小明")
        await expect(page.locator("#card-born")).to_have_text("2019 年出生")
        await expect(page.locator("#card-qr svg")).to_have_attribute("aria-label", re.compile(code))
        assert await read_qr(page, "#card-qr svg") == code
        await screenshot(kiosk, "3-card-zh")
        printed = await print_pdf(kiosk, "card")
        assert len(printed.pages) == 1
        text = pdf_text(printed)
        assert code in text and "王小明" in text and "2019年出生" in text
        assert "登记" not in text, "only the card is printed, not the screen around it"

        await page.get_by_role("button", name="继续").click()
        await expect(page.locator("#consent-patient")).to_have_text(f"王小明 · {code}")
        await check_in_from_consent(kiosk)
        visits = await visits_of(live_server, code)
        consultation = await page.evaluate(
            "sessionStorage.getItem('teleconsult.outlet.consultation')"
        )
        assert [v["consultation_id"] for v in visits] == [consultation]
        assert page_faults(kiosk) == []
    finally:
        await kiosk.context.close()


async def test_a_returning_child_is_found_by_the_typed_card_number(
    browser: Browser, live_server: RunningServer
) -> None:
    patient = await registered_elsewhere(live_server)
    kiosk = await open_kiosk(browser, live_server, "kiosk-returning")
    page = kiosk.page
    try:
        await page.get_by_role("button", name="English").click()
        await to_patient_step(page)
        await page.get_by_role("button", name=re.compile("We have a patient card")).click()
        number = page.get_by_label("Card number")
        await number.fill("ZZZZ-ZZZZ")
        await page.get_by_role("button", name="Find").click()
        await expect(page.locator("#lookup-message")).to_be_visible()
        await expect(page.get_by_role("button", name="Continue")).to_be_disabled()
        await number.fill(patient["card_code"].lower().replace("-", " "))
        await page.get_by_role("button", name="Find").click()
        found = page.locator("#lookup-found")
        await expect(found).to_have_text(f"Li Hua, born 2016 · card {patient['card_code']}")
        await screenshot(kiosk, "1-found-en")
        await page.get_by_role("button", name="中文").click()
        await expect(found).to_contain_text("2016 年出生")
        await page.get_by_role("button", name="English").click()
        await page.get_by_role("button", name="Continue").click()
        await expect(page.locator("#consent-patient")).to_contain_text("Li Hua")
        await check_in_from_consent(kiosk)
        visits = await visits_of(live_server, patient["card_code"])
        assert len(visits) == 1 and visits[0]["outlet_id"] == OUTLET
    finally:
        await kiosk.context.close()


def card_video(code: str, path: Path, width: int = 640, height: int = 480) -> Path:
    """A Y4M clip of a card's QR code, as Chromium's fake camera plays it."""
    matrix = segno.make_qr(code, error="m").matrix
    scale = (min(width, height) - 80) // (len(matrix) + 8)
    side = scale * (len(matrix) + 8)
    luma = bytearray([235]) * (width * height)
    left, top = (width - side) // 2, (height - side) // 2
    for row, bits in enumerate(matrix):
        for col, dark in enumerate(bits):
            if not dark:
                continue
            x, y = left + (col + 4) * scale, top + (row + 4) * scale
            for line in range(y, y + scale):
                luma[line * width + x : line * width + x + scale] = bytes([16]) * scale
    chroma = bytes([128]) * (width * height // 4)
    frame = b"FRAME\n" + bytes(luma) + chroma + chroma
    header = f"YUV4MPEG2 W{width} H{height} F15:1 Ip A1:1 C420jpeg\n".encode()
    path.write_bytes(header + frame * 15)
    return path


async def test_a_returning_child_is_found_by_the_card_qr_code_shown_to_the_camera(
    live_server: RunningServer, tmp_path: Path
) -> None:
    patient = await registered_elsewhere(live_server)
    video = card_video(patient["card_code"], tmp_path / "card.y4m")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={video}"],
            headless=True,
        )
        try:
            kiosk = await open_kiosk(browser, live_server, "kiosk-scan")
            page = kiosk.page
            await page.get_by_role("button", name="English").click()
            await to_patient_step(page)
            await page.get_by_role("button", name=re.compile("We have a patient card")).click()
            await page.get_by_role("button", name="Scan the card's QR code").click()
            await expect(page.locator("#lookup-found")).to_contain_text(
                patient["card_code"], timeout=15_000
            )
            await expect(page.get_by_label("Card number")).to_have_value(patient["card_code"])
            await expect(page.locator("#scan-figure")).to_be_hidden()
            await screenshot(kiosk, "1-scanned")
            await page.get_by_role("button", name="Continue").click()
            await check_in_from_consent(kiosk)
            assert page_faults(kiosk) == []
        finally:
            await browser.close()
