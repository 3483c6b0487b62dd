"""Helpers for driving the pages: screenshots and media checks that read what the browser really
plays (frames decoded by the <video>, sound through WebAudio); pages and calls come from
:mod:`benchmarks.browser_call`, shared with ``bench weaklink``."""

from __future__ import annotations

import time
from pathlib import Path

from benchmarks.browser_call import (
    DESK_VIEWPORT,
    KIOSK_VIEWPORT,
    PHONE_VIEWPORT,
    PageHandle,
    admit_guest,
    open_page,
    wait_moving_video,
)

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
