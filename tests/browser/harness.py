"""Helpers for driving the pages: screenshots and media checks that read what the browser really
plays (frames decoded by the <video>, sound through WebAudio); pages and calls come from
:mod:`benchmarks.browser_call`, shared with ``bench weaklink``."""

from __future__ import annotations

import re
import time
from pathlib import Path

from playwright.async_api import Browser, expect

from benchmarks.browser_call import (
    CALL_TIMEOUT_MS,
    DESK_VIEWPORT,
    KIOSK_VIEWPORT,
    PHONE_VIEWPORT,
    PageHandle,
    open_page,
    wait_moving_video,
)
from benchmarks.link_emulator import LinkEmulator

__all__ = [
    "DESK_VIEWPORT",
    "KIOSK_VIEWPORT",
    "PHONE_VIEWPORT",
    "SCREENSHOT_DIR",
    "PageHandle",
    "admit_guest",
    "audio_peak",
    "open_page",
    "screenshot",
    "wait_audible",
    "wait_moving_video",
]

SCREENSHOT_DIR = Path(__file__).parents[2] / "test-artifacts" / "screenshots"


async def admit_guest(
    browser: Browser, desk: PageHandle, link: LinkEmulator | None = None
) -> tuple[PageHandle, str]:
    """A parent invited from the specialist's console joins (behind ``link`` if given) and is
    admitted: their page, in the call, and their participant id. The page is closed if that
    fails."""
    console = desk.page
    await console.get_by_role("button", name="Invite a parent").click()
    await expect(console.locator("#invite-url")).to_have_value(re.compile(r"/join/\S+$"))
    invite_url = await console.locator("#invite-url").input_value()
    guest = await open_page(browser, "guest", invite_url, PHONE_VIEWPORT, link)
    try:
        await guest.page.get_by_label("Your name").fill("Mother")
        await guest.page.get_by_role("button", name="Join").click()
        await console.locator("#door-list li").get_by_role("button", name="Admit").click()
        await expect(guest.page.locator("body")).to_have_attribute(
            "data-screen", "call", timeout=CALL_TIMEOUT_MS
        )
        guest_id = await console.locator("#tiles [data-participant^='guest-']").get_attribute(
            "data-participant"
        )
        assert guest_id is not None
    except BaseException:
        await guest.context.close()
        raise
    return guest, guest_id


# Peak amplitude of the element's audio over ~1.5 s through an AnalyserNode (0 = silence).
_AUDIO_PEAK = """
async (selector) => {
  const video = document.querySelector(selector);
  const stream = video && video.srcObject;
  if (!stream || stream.getAudioTracks().length === 0) return 0;
  const context = new AudioContext();
  await context.resume();
  const analyser = context.createAnalyser();
  analyser.fftSize = 2048;
  context.createMediaStreamSource(stream).connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  let peak = 0;
  for (let i = 0; i < 15; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    analyser.getFloatTimeDomainData(samples);
    for (const s of samples) peak = Math.max(peak, Math.abs(s));
  }
  await context.close();
  return peak;
}
"""


async def screenshot(handle: PageHandle, step: str) -> Path:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{handle.name}-{step}.png"
    await handle.page.screenshot(path=str(path))
    return path


async def audio_peak(handle: PageHandle, selector: str) -> float:
    """Peak level (0..1) of the sound the element plays."""
    return float(await handle.page.evaluate(_AUDIO_PEAK, selector))


async def wait_audible(handle: PageHandle, selector: str, timeout_s: float = 20.0) -> float:
    """Wait until the element's audio is above silence (the fake microphone beeps)."""
    deadline = time.monotonic() + timeout_s
    peak = 0.0
    while time.monotonic() < deadline:
        peak = await audio_peak(handle, selector)
        if peak > 0.01:
            return peak
    raise AssertionError(
        f"{handle.name}: {selector} stayed silent (peak {peak})\n" + handle.log_tail()
    )
