"""Helpers of the care-record browser tests: walking the kiosk to its patient step, reading
QR codes the pages draw, and checking printouts as Chromium renders them to PDF."""

from __future__ import annotations

import io
import re
import unicodedata

from playwright.async_api import Page, expect
from pypdf import PdfReader

from tests.browser.harness import SCREENSHOT_DIR, PageHandle

# Draws an <svg> the page shows onto a canvas and reads it back with the page's own QR reader.
_READ_QR = """
async (selector) => {
  const svg = document.querySelector(selector);
  if (!svg) return null;
  if (!self.jsQR) {
    await new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = "/vendor/jsqr/jsQR.js";
      script.onload = resolve;
      script.onerror = reject;
      document.head.append(script);
    });
  }
  const url = URL.createObjectURL(new Blob([new XMLSerializer().serializeToString(svg)],
                                           {type: "image/svg+xml"}));
  const image = new Image();
  image.src = url;
  await image.decode();
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 400;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0, 400, 400);
  URL.revokeObjectURL(url);
  const found = self.jsQR(context.getImageData(0, 0, 400, 400).data, 400, 400);
  return found ? found.data : null;
}
"""


async def to_patient_step(page: Page, service: str = "ophthalmology") -> None:
    """From the kiosk's start screen through the device check and the service."""
    await expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
    await page.locator("#start-button").click()
    await expect(page.locator("#check-next")).to_be_enabled(timeout=20_000)
    await page.locator("#check-next").click()
    await page.locator(f"[data-service={service}]").click()
    await expect(page.locator("body")).to_have_attribute("data-screen", "patient")


async def read_qr(page: Page, selector: str) -> str | None:
    """The text of the QR code the page draws at ``selector``."""
    text = await page.evaluate(_READ_QR, selector)
    return None if text is None else str(text)


async def print_pdf(handle: PageHandle, step: str) -> PdfReader:
    """The page printed to A4 as Chromium does it (print stylesheet), kept beside the
    screenshots."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{handle.name}-{step}.pdf"
    pdf = await handle.page.pdf(path=str(path), format="A4", print_background=True)
    # A picture of the print layout beside the PDF, for a person to look at.
    await handle.page.emulate_media(media="print")
    await handle.page.screenshot(path=str(path.with_suffix(".png")), full_page=True)
    await handle.page.emulate_media(media="no-override")
    return PdfReader(io.BytesIO(pdf))


def pdf_text(reader: PdfReader) -> str:
    """The printed text without white space (letter-spaced codes come out spaced) and in NFKC
    (the PDF's CJK glyphs may map to compatibility ideographs)."""
    text = "".join(page.extract_text() or "" for page in reader.pages)
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def page_faults(*handles: PageHandle, expected: str | None = None) -> list[str]:
    """Script errors and refusals (CSP included) the pages logged, but for ``expected``."""
    return [
        line
        for handle in handles
        for line in handle.console
        if (" error]" in line or " pageerror]" in line or "Content Security Policy" in line)
        and not (expected and expected in line)
    ]
