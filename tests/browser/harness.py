"""Helpers for driving the pages: contexts with a camera, screenshots, and media checks that read
what the browser really plays (frames decoded by the <video>, sound through WebAudio)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page

SCREENSHOT_DIR = Path(__file__).parents[2] / "test-artifacts" / "screenshots"

KIOSK_VIEWPORT = {"width": 1280, "height": 800}
DESK_VIEWPORT = {"width": 1440, "height": 900}
PHONE_VIEWPORT = {"width": 412, "height": 860}

# Frames decoded by the element and its clock, sampled twice: moving video advances both.
_VIDEO_PROGRESS = """
async (selector) => {
  const video = document.querySelector(selector);
  const tracks = video && video.srcObject
    ? video.srcObject.getTracks().map((t) => `${t.kind}:${t.muted ? "muted" : "live"}`)
    : [];
  if (!video || video.videoWidth === 0) return {width: 0, frames: 0, advanced: false, tracks};
  const before = [video.getVideoPlaybackQuality().totalVideoFrames, video.currentTime];
  await new Promise((resolve) => setTimeout(resolve, 800));
  const after = [video.getVideoPlaybackQuality().totalVideoFrames, video.currentTime];
  return {width: video.videoWidth, frames: after[0], tracks,
          advanced: after[0] > before[0] && after[1] > before[1]};
}
"""

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


@dataclass
class PageHandle:
    """A page in its own context, with its console kept for failure messages."""

    name: str
    context: BrowserContext
    page: Page
    console: list[str] = field(default_factory=list)

    def log_tail(self, lines: int = 25) -> str:
        return "\n".join(self.console[-lines:])


async def open_page(browser: Browser, name: str, url: str, viewport: dict[str, int]) -> PageHandle:
    context = await browser.new_context(
        viewport=viewport, permissions=["camera", "microphone"], locale="en-GB"
    )
    page = await context.new_page()
    handle = PageHandle(name, context, page)

    def remember(message: ConsoleMessage) -> None:
        handle.console.append(f"[{name} {message.type}] {message.text}")

    page.on("console", remember)
    page.on("pageerror", lambda error: handle.console.append(f"[{name} pageerror] {error}"))
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await page.goto(url)
    return handle


async def screenshot(handle: PageHandle, step: str) -> Path:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{handle.name}-{step}.png"
    await handle.page.screenshot(path=str(path))
    return path


async def wait_moving_video(
    handle: PageHandle, selector: str, timeout_s: float = 30.0
) -> dict[str, object]:
    """Wait until ``selector``'s <video> has a picture whose frames and clock advance."""
    deadline = time.monotonic() + timeout_s
    last: dict[str, object] = {}
    while time.monotonic() < deadline:
        if await handle.page.locator(selector).count():
            last = await handle.page.evaluate(_VIDEO_PROGRESS, selector)
            if last.get("advanced"):
                return last
        await asyncio.sleep(0.3)
    raise AssertionError(
        f"{handle.name}: no moving video in {selector} after {timeout_s}s (last {last})\n"
        + handle.log_tail()
    )


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
