"""The report in real Chromium, from the console to the family's phone: the specialist sees the
child's earlier visits in the offer and beside the call, writes the report from the service's
template, saves and finalises it; the kiosk's ended screen shows it and prints it on one A4 page
in English and in Chinese with the family's link as a QR code and the PIN; an amendment needs a
reason and keeps every version; the family reads the report on a phone with the PIN."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import Browser, Route, expect

from benchmarks.browser_call import CALL_TIMEOUT_MS, open_desk
from rooms.roles import Role
from tests.browser.care_pages import page_faults, pdf_text, print_pdf, read_qr, to_patient_step
from tests.browser.harness import (
    DESK_VIEWPORT,
    KIOSK_VIEWPORT,
    PageHandle,
    open_page,
    screenshot,
)
from tests.clinical.conftest import Uploader, png
from tests.conftest import RunningServer
from tests.records.test_care_flow import CHILD, report, visit
from tests.signaling.consultation_peers import Cast

pytestmark = pytest.mark.asyncio(loop_scope="session")

FAMILY_VIEWPORT = {"width": 390, "height": 844}
EARLIER_SUMMARY = "Mild myopia in both eyes."
# A report as long as a real one: the printout must still be one A4 page.
ADVICE = (
    "New glasses for distance, worn all day at school and at home. Two hours of outdoor play "
    "every day, in daylight; breaks from books and screens every 20 minutes, looking at "
    "something far away for 20 seconds. Sit at least 30 cm from a book and 50 cm from a "
    "screen. Come back sooner if the child squints, has headaches or sees less well."
)


async def earlier_visit(server: RunningServer) -> str:
    """A child registered at another outlet, seen once by Dr Wu with a final report."""
    cast = Cast(server)
    try:
        outlet = await cast.outlet("outlet-7")
        patient = (await outlet.ok("patient.register", CHILD))["patient"]
        dr_wu = await cast.join(Role.SPECIALIST, "dr-wu", name="Dr Wu", services=["ophthalmology"])
        ref = {"consultation_id": await visit(outlet, "outlet-7", patient["patient_id"], dr_wu)}
        await dr_wu.ok("report.save", {**ref, **report()})
        await dr_wu.ok("report.finalise", ref)
        await dr_wu.ok("consultation.end", {**ref, "reason": "completed"})
        return str(patient["card_code"])
    finally:
        await cast.close()


async def kiosk_checks_in(browser: Browser, server: RunningServer, card_code: str) -> PageHandle:
    token = server.token(Role.OUTLET, "outlet-0042", name="Xinhua Rd post office")
    kiosk = await open_page(
        browser, "kiosk-report", f"{server.url}/outlet#token={token}", KIOSK_VIEWPORT
    )
    page = kiosk.page
    await page.get_by_role("button", name="English").click()
    await to_patient_step(page)
    await page.get_by_role("button", name=re.compile("We have a patient card")).click()
    await page.get_by_label("Card number").fill(card_code)
    await page.get_by_role("button", name="Find").click()
    await page.get_by_role("button", name="Continue").click()
    await page.locator("#guardian-present").check()
    await page.locator("#consent-consult").check()
    await page.locator("#check-in").click()
    await expect(page.locator("body")).to_have_attribute("data-screen", "waiting")
    return kiosk


async def test_the_report_goes_from_the_console_to_the_printout_and_the_familys_phone(
    browser: Browser, live_server: RunningServer
) -> None:
    card_code = await earlier_visit(live_server)
    desk = await open_desk(browser, live_server)
    kiosk = await kiosk_checks_in(browser, live_server, card_code)
    family: PageHandle | None = None
    try:
        d, k = desk.page, kiosk.page
        offer = d.locator("#offer-dialog")
        await expect(offer).to_be_visible(timeout=CALL_TIMEOUT_MS)
        await expect(d.locator("#offer-history")).to_contain_text("Dr Wu")
        await expect(d.locator("#offer-history")).to_contain_text(EARLIER_SUMMARY)
        await screenshot(desk, "care-1-offer-history")
        await d.get_by_role("button", name="Accept").click()
        await expect(k.locator("body")).to_have_attribute(
            "data-screen", "call", timeout=CALL_TIMEOUT_MS
        )

        earlier = d.locator("#history li")
        await expect(earlier).to_have_count(1)
        await earlier.locator("summary").click()
        await expect(earlier).to_contain_text("Visual acuity, right eye")
        await expect(earlier).to_contain_text("Glasses for the blackboard")

        form = d.locator("#report-form")
        await form.get_by_label("Visual acuity, right eye").fill("0.5")
        await form.get_by_label("Visual acuity, left eye").fill("0.7")
        await form.get_by_label("Diagnosis").fill("myopia, progressing")
        await form.get_by_label("Summary").fill("Myopia has progressed in both eyes.")
        await form.get_by_label("Refraction, right eye").fill("-1.75 DS / -0.50 DC x 180")
        await form.get_by_label("Refraction, left eye").fill("-1.25 DS")
        await form.get_by_label("Advice").fill(ADVICE)
        await form.get_by_label("Referral (optional)").fill(
            "County eye hospital: cycloplegic refraction and a check of the retina."
        )
        await form.get_by_label("Follow-up in days").fill("90")
        await expect(form.get_by_label("Share the notes with the family")).to_be_hidden()
        # Nobody clicks Save draft: the draft saves itself once typing stops.
        await expect(d.locator("#report-message")).to_contain_text("Draft saved", timeout=15_000)
        await expect(d.locator("#report-status")).to_have_text("· Version 1")
        await screenshot(desk, "care-2-report-draft")

        # The call ends first; the kiosk waits for the report the specialist finishes after it.
        await d.get_by_role("button", name="End", exact=True).click()
        await expect(k.locator("body")).to_have_attribute("data-screen", "ended")
        await expect(k.locator("#report-waiting")).to_be_visible()
        await expect(d.locator("#report-close")).to_be_visible()
        await form.get_by_role("button", name="Finalise").click()
        await expect(d.locator("#report-message")).to_contain_text("Final, version 1")
        await expect(form.get_by_role("button", name="Save draft")).to_be_hidden()
        sheet = k.locator("#report-sheet")
        await expect(sheet).to_be_visible()
        await expect(k.locator("#report-waiting")).to_be_hidden()
        await expect(sheet).to_contain_text("Myopia has progressed in both eyes.")
        await expect(sheet).to_contain_text("Come back in 90 days")
        await expect(sheet).to_contain_text(f"{CHILD['display_name']} · card {card_code}")
        pin = ((await k.locator("#sheet-pin").text_content()) or "").removeprefix("PIN: ")
        assert re.fullmatch(r"[0-9]{6}", pin), pin
        link = await read_qr(k, "#sheet-qr svg")
        assert link and re.fullmatch(rf"{re.escape(live_server.url)}/r/[0-9A-Z*~$=]{{9}}", link), (
            link
        )
        await expect(k.locator("#sheet-url")).to_have_text(link)
        await screenshot(kiosk, "care-1-ended-report")
        for lang, words in (("en", ["Summary", "Myopiahasprogressed"]), ("zh", ["小结", "密码"])):
            await k.get_by_role("button", name={"en": "English", "zh": "中文"}[lang]).click()
            printed = await print_pdf(kiosk, f"report-{lang}")
            text = pdf_text(printed)
            assert len(printed.pages) == 1, f"{lang}: {len(printed.pages)} pages"
            for word in [*words, pin, "0.5"]:
                assert word in text, f"{lang}: {word!r} not printed"
            assert "Backtostart" not in text and "回到开始" not in text

        # An amendment needs a reason and is a new version; the kiosk shows the newest.
        await d.get_by_role("button", name="Save amendment").click()
        await expect(d.locator("#report-message")).to_contain_text("Give a reason")
        await form.get_by_label("Visual acuity, left eye").fill("0.6")
        await form.get_by_label("Reason for the amendment").fill("Left eye misread")
        await d.get_by_role("button", name="Save amendment").click()
        await expect(d.locator("#report-status")).to_have_text("· Version 2")
        await d.locator("#report-version-buttons").get_by_role("button", name="Version 1").click()
        await expect(d.locator("#report-version-view")).to_contain_text("0.7")
        await screenshot(desk, "care-3-amended")
        await expect(sheet).to_contain_text(
            "已修改（第 2 版）：Left eye misread"
        )  # kiosk in Chinese
        await expect(sheet).to_contain_text("0.6")
        await k.get_by_role("button", name="回到开始").click()
        await expect(k.locator("body")).to_have_attribute("data-screen", "start")
        left = await k.locator("[data-screen=ended]").text_content() or ""
        for private in (CHILD["display_name"], pin, link, "Myopia", card_code):
            assert private not in left, f"{private!r} stays for the next family"

        family = await open_family(browser, link)
        f = family.page
        await expect(f.get_by_role("heading", level=1)).to_have_text("孩子的问诊报告")
        wrong = "000000" if pin != "000000" else "111111"
        await f.get_by_label("密码").fill(wrong)
        await f.get_by_role("button", name="查看报告").click()
        await expect(f.locator("#pin-message")).to_contain_text("密码不正确")
        await f.get_by_label("密码").fill(pin)
        await f.get_by_role("button", name="查看报告").click()
        await expect(f.locator("#family-report")).to_contain_text("Myopia has progressed")
        await expect(f.locator("#family-report")).to_contain_text("左眼视力")
        await screenshot(family, "1-report-zh")
        await f.get_by_role("button", name="English").click()
        await expect(f.locator("#family-report")).to_contain_text("Visual acuity, left eye")
        width = await f.evaluate("document.documentElement.scrollWidth")
        assert width <= FAMILY_VIEWPORT["width"], "the report fits the phone's width"
        await screenshot(family, "2-report-en")
        wrong_pin = "the server responded with a status of 403"
        assert page_faults(desk, kiosk, family, expected=wrong_pin) == []
    finally:
        if family is not None:
            await family.context.close()
        await kiosk.context.close()
        await desk.context.close()


async def open_family(browser: Browser, link: str) -> PageHandle:
    """The family's phone, set to Chinese."""
    context = await browser.new_context(viewport=FAMILY_VIEWPORT, locale="zh-CN", is_mobile=True)
    page = await context.new_page()
    handle = PageHandle("family", context, page)
    page.on(
        "console", lambda message: handle.console.append(f"[family {message.type}] {message.text}")
    )
    page.on("pageerror", lambda error: handle.console.append(f"[family pageerror] {error}"))
    await page.goto(link)
    return handle


async def test_the_family_page_says_what_to_do_when_the_report_cannot_be_read(
    browser: Browser, live_server: RunningServer
) -> None:
    context = await browser.new_context(viewport=FAMILY_VIEWPORT, locale="en-US", is_mobile=True)
    page = await context.new_page()
    try:
        await page.goto(f"{live_server.url}/r/ZZZZZZZZZ")
        await expect(page.get_by_role("heading", level=1)).to_have_text(
            "Your child's consultation report"
        )
        await page.get_by_label("PIN").fill("12")
        await page.get_by_role("button", name="Show the report").click()
        await expect(page.locator("#pin-message")).to_contain_text("6 digits")
        await page.get_by_label("PIN").fill("123456")
        await page.get_by_role("button", name="Show the report").click()
        await expect(page.locator("#pin-message")).to_contain_text("There is no report")
        # An expired or locked report, as the server answers (tests/records cover when).
        for status, words in ((410, "expired"), (429, "locked")):
            await page.route("**/api/reports/*", refusal(status))
            await page.get_by_role("button", name="Show the report").click()
            await expect(page.locator("#pin-message")).to_contain_text(words)
            await page.unroute("**/api/reports/*")
        await page.get_by_role("button", name="中文").click()
        await expect(page.locator("#pin-message")).to_contain_text("锁定")
    finally:
        await context.close()


def refusal(status: int) -> Callable[[Route], Awaitable[None]]:
    async def fulfil(route: Route) -> None:
        await route.fulfill(status=status, json={"error": {"code": "refused", "message": "-"}})

    return fulfil


async def test_counselling_notes_reach_the_family_only_when_the_counsellor_shares_them(
    browser: Browser, live_server: RunningServer
) -> None:
    token = live_server.token(Role.COUNSELLOR, "cn-wang", name="Ms Wang", services=["counselling"])
    desk = await open_page(
        browser, "counsellor", f"{live_server.url}/counsellor#token={token}", DESK_VIEWPORT
    )
    outlet = live_server.token(Role.OUTLET, "outlet-0042", name="Xinhua Rd post office")
    kiosk = await open_page(
        browser, "kiosk-counselling", f"{live_server.url}/outlet#token={outlet}", KIOSK_VIEWPORT
    )
    try:
        d, k = desk.page, kiosk.page
        await expect(d.locator("#connection")).to_have_attribute("data-state", "connected")
        await d.get_by_role("button", name="中文").click()
        await d.get_by_role("button", name="空闲").click()
        await to_patient_step(k, "counselling")  # the kiosk in Chinese
        await k.locator("[data-patient=none]").click()
        await k.locator("#guardian-present").check()
        await k.locator("#consent-consult").check()
        await k.locator("#check-in").click()
        await expect(d.locator("#offer-history")).to_contain_text(
            "没有就诊卡", timeout=CALL_TIMEOUT_MS
        )
        await d.locator("#offer-accept").click()
        await expect(k.locator("body")).to_have_attribute(
            "data-screen", "call", timeout=CALL_TIMEOUT_MS
        )

        form = d.locator("#report-form")
        share = form.get_by_label("把记录分享给家属")
        await expect(share).to_be_visible()
        await expect(form.locator("#report-findings input")).to_have_count(0)
        await form.get_by_label("小结").fill("Talked about worries at school.")
        await form.get_by_role("button", name="定稿").click()
        await expect(d.locator("#report-message")).to_contain_text("已定稿，第 1 版")
        await screenshot(desk, "care-1-counselling-zh")
        await d.locator("#end").click()
        sheet = k.locator("#report-sheet")
        await expect(sheet).to_contain_text("咨询师对本次咨询的记录保密")
        await expect(sheet).not_to_contain_text("worries")

        await share.check()
        await form.get_by_label("修改原因").fill("家长希望看到记录")
        await d.get_by_role("button", name="保存修改").click()
        await expect(sheet).to_contain_text("Talked about worries at school.")
        await expect(sheet).not_to_contain_text("保密")
        await screenshot(kiosk, "care-counselling-shared-zh")
        assert page_faults(desk, kiosk) == []
    finally:
        await kiosk.context.close()
        await desk.context.close()


async def test_the_family_sees_the_photos_the_report_attaches(
    browser: Browser, live_server: RunningServer
) -> None:
    cast = Cast(live_server)
    try:
        outlet = await cast.outlet("outlet-8")
        patient = (await outlet.ok("patient.register", CHILD))["patient"]
        doctor = await cast.specialist("dr-photo")
        ref = {"consultation_id": await visit(outlet, "outlet-8", patient["patient_id"], doctor)}
        kiosk = Uploader(live_server, outlet.token)
        _, attached = await kiosk.send(ref["consultation_id"], png((300, 200)))
        await kiosk.send(ref["consultation_id"], png((50, 40)))  # taken, not attached
        await doctor.ok("report.save", {**ref, **report(attachments=[attached["photo_id"]])})
        final = await doctor.ok("report.finalise", ref)
    finally:
        await cast.close()
    family = await open_family(browser, f"{live_server.url}/r/{final['share_code']}")
    try:
        f = family.page
        await f.locator("#pin").fill(final["share_pin"])
        await f.locator("#pin-form button").click()
        photos = f.locator("img.family-photo")
        await expect(photos).to_have_count(1, timeout=CALL_TIMEOUT_MS)
        size = await photos.evaluate("image => [image.naturalWidth, image.naturalHeight]")
        assert size == [300, 200], "the attached photo, at its own size"
        await screenshot(family, "3-report-with-photo")
        assert page_faults(family) == []
    finally:
        await family.context.close()
