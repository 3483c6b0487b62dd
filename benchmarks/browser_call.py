"""Real Chromium pages in a consultation, for the browser tests and ``bench weaklink``.

Every page gets its own browser context with a camera and microphone (Chromium's fake devices)
and a small init script that remembers the page's ``RTCPeerConnection`` objects, so
:func:`media_snapshot` can read what the page really receives and sends from ``getStats()``
without any hook in the pages. A page opened with a ``link`` has its media routed through that
:class:`~benchmarks.link_emulator.LinkEmulator` (see :mod:`benchmarks.browser_link`).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    ViewportSize,
    expect,
)

from benchmarks.browser_link import SignallingRewriter
from benchmarks.link_emulator import LinkEmulator
from rooms.roles import Role

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Remote audio plays without a tap in tests; kiosks run Chromium with the same policy.
    "--autoplay-policy=no-user-gesture-required",
]

KIOSK_VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
DESK_VIEWPORT: ViewportSize = {"width": 1440, "height": 900}
PHONE_VIEWPORT: ViewportSize = {"width": 412, "height": 860}

OUTLET_ID = "outlet-0042"
SPECIALIST_ID = "dr-li"
CALL_TIMEOUT_MS = 30_000

# Keeps the page's peer connections (the last few) where media_snapshot can find them.
_REMEMBER_PEERS = """
(() => {
  const Native = window.RTCPeerConnection;
  const peers = [];
  window.__teleconsultPeers = peers;
  function Remembered(...args) {
    const pc = new Native(...args);
    peers.push(pc);
    if (peers.length > 8) peers.shift();
    return pc;
  }
  Remembered.prototype = Native.prototype;
  Object.setPrototypeOf(Remembered, Native);
  window.RTCPeerConnection = Remembered;
})();
"""

# Cumulative receive counters per kind (for one tile's tracks, or all), the video sent (and why
# the browser limits it) and whether the page shows the weak-connection notice.
_MEDIA_SNAPSHOT = """
async (participantId) => {
  const peers = (window.__teleconsultPeers || []).filter((pc) => pc.connectionState !== "closed");
  let ids = null;
  if (participantId) {
    const video = document.querySelector(`[data-participant="${participantId}"] video`);
    ids = new Set(video && video.srcObject ? video.srcObject.getTracks().map((t) => t.id) : []);
  }
  const zero = () => ({frames: 0, bytes: 0, headerBytes: 0, packets: 0, lost: 0,
                       retransmittedBytes: 0, concealed: 0, samples: 0, width: 0, height: 0});
  const notice = document.querySelector("#link-notice");
  const snap = {state: peers.length ? peers[peers.length - 1].connectionState : "none",
                paused: Boolean(notice && notice.textContent), video: zero(), audio: zero(),
                sent: {bytes: 0, retransmittedBytes: 0, width: 0, height: 0, fps: 0,
                       limitation: "none"}};
  for (const pc of peers) {
    (await pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && (ids === null || ids.has(s.trackIdentifier))) {
        const k = snap[s.kind];
        if (!k) return;
        k.frames += s.framesDecoded || 0;
        k.bytes += s.bytesReceived || 0;
        k.headerBytes += s.headerBytesReceived || 0;
        k.packets += s.packetsReceived || 0;
        k.lost += Math.max(0, s.packetsLost || 0);
        k.retransmittedBytes += s.retransmittedBytesReceived || 0;
        k.concealed += s.concealedSamples || 0;
        k.samples += s.totalSamplesReceived || 0;
        k.width = Math.max(k.width, s.frameWidth || 0);
        k.height = Math.max(k.height, s.frameHeight || 0);
      }
      if (s.type === "outbound-rtp" && s.kind === "video") {
        snap.sent.bytes += (s.bytesSent || 0) + (s.headerBytesSent || 0);
        snap.sent.retransmittedBytes += s.retransmittedBytesSent || 0;
        snap.sent.width = Math.max(snap.sent.width, s.frameWidth || 0);
        snap.sent.height = Math.max(snap.sent.height, s.frameHeight || 0);
        snap.sent.fps = Math.max(snap.sent.fps, s.framesPerSecond || 0);
        if (s.qualityLimitationReason && s.qualityLimitationReason !== "none") {
          snap.sent.limitation = s.qualityLimitationReason;
        }
      }
    });
  }
  return snap;
}
"""

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


Step = Callable[["PageHandle", str], Awaitable[object]]


class Site(Protocol):
    """Where the app runs and how to sign in to it."""

    @property
    def url(self) -> str: ...

    def token(self, role: Role, subject: str, **kwargs: Any) -> str: ...


@dataclass
class PageHandle:
    """A page in its own context, with its console kept for failure messages."""

    name: str
    context: BrowserContext
    page: Page
    console: list[str] = field(default_factory=list)
    rewriter: SignallingRewriter | None = None

    def log_tail(self, lines: int = 25) -> str:
        return "\n".join(self.console[-lines:])


async def open_page(
    browser: Browser,
    name: str,
    url: str,
    viewport: ViewportSize,
    link: LinkEmulator | None = None,
) -> PageHandle:
    """A new context with camera and microphone; its media crosses ``link`` if given."""
    context = await browser.new_context(
        viewport=viewport, permissions=["camera", "microphone"], locale="en-GB"
    )
    await context.add_init_script(_REMEMBER_PEERS)
    rewriter = None
    if link is not None:
        rewriter = SignallingRewriter(link)
        await rewriter.install(context)
    page = await context.new_page()
    handle = PageHandle(name, context, page, rewriter=rewriter)

    def remember(message: ConsoleMessage) -> None:
        handle.console.append(f"[{name} {message.type}] {message.text}")

    page.on("console", remember)
    page.on("pageerror", lambda error: handle.console.append(f"[{name} pageerror] {error}"))
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await page.goto(url)
    return handle


async def media_snapshot(handle: PageHandle, participant_id: str | None = None) -> dict[str, Any]:
    """Cumulative getStats counters: received per kind (``participant_id``'s tile or all), sent."""
    result: dict[str, Any] = await handle.page.evaluate(_MEDIA_SNAPSHOT, participant_id)
    return result


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


def tile(participant_id: str) -> str:
    return f'[data-participant="{participant_id}"] video'


@dataclass
class Call:
    kiosk: PageHandle
    desk: PageHandle

    async def close(self) -> None:
        for handle in (self.kiosk, self.desk):
            await handle.context.close()


async def open_desk(browser: Browser, site: Site) -> PageHandle:
    """The specialist's console, signed in and available."""
    token = site.token(Role.SPECIALIST, SPECIALIST_ID, name="Dr Li", services=["ophthalmology"])
    desk = await open_page(
        browser, "specialist", f"{site.url}/specialist#token={token}", DESK_VIEWPORT
    )
    await expect(desk.page.locator("#connection")).to_have_attribute("data-state", "connected")
    await desk.page.get_by_role("button", name="Available").click()
    await expect(desk.page.get_by_role("button", name="Available")).to_have_attribute(
        "aria-pressed", "true"
    )
    return desk


async def check_in(
    browser: Browser,
    site: Site,
    record: bool = False,
    audio_only: bool = False,
    link: LinkEmulator | None = None,
    at_step: Step | None = None,
) -> PageHandle:
    """Walk the kiosk from its start screen to the waiting screen, in English.

    ``at_step(handle, name)`` (e.g. a screenshot) is awaited at the start screen.
    """
    token = site.token(Role.OUTLET, OUTLET_ID, name="Xinhua Rd post office")
    kiosk = await open_page(
        browser, "outlet", f"{site.url}/outlet?return_after=3#token={token}", KIOSK_VIEWPORT, link
    )
    page = kiosk.page
    await expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
    await page.get_by_role("button", name="English").click()
    if at_step is not None:
        await at_step(kiosk, "1-start")
    await page.locator("#start-button").click()
    await expect(page.locator("#check-next")).to_be_enabled(timeout=20_000)
    if audio_only:
        await page.get_by_label("Voice only").check()
    await page.locator("#check-next").click()
    await page.locator("[data-service=ophthalmology]").click()
    # A visit without a patient card: the kiosk's ticket names the child.
    await page.locator("[data-patient=none]").click()
    await page.locator("#guardian-present").check()
    await page.locator("#consent-consult").check()
    if record:
        await page.locator("#consent-record").check()
    await page.locator("#check-in").click()
    await expect(page.locator("body")).to_have_attribute("data-screen", "waiting")
    return kiosk


async def start_call(
    browser: Browser,
    site: Site,
    record: bool = False,
    link: LinkEmulator | None = None,
    at_step: Step | None = None,
    kiosk_browser: Browser | None = None,
    kiosk_site: Site | None = None,
) -> Call:
    """Specialist available, kiosk checks in (behind ``link`` if given), accepted, media flows.

    ``kiosk_browser``: open the kiosk in this browser (a browser's fake camera is one device
    for all its pages, held at the resolution the first page opened it with; a kiosk in its
    own browser can raise its camera to the highest resolution). ``kiosk_site``: the kiosk's
    way to the app (e.g. through a :class:`benchmarks.tcp_shaper.TcpShaper`)."""
    call = await ring(browser, site, record, link, at_step, kiosk_browser, kiosk_site)
    await accept(call)
    return call


async def ring(
    browser: Browser,
    site: Site,
    record: bool = False,
    link: LinkEmulator | None = None,
    at_step: Step | None = None,
    kiosk_browser: Browser | None = None,
    kiosk_site: Site | None = None,
) -> Call:
    """:func:`start_call` up to the specialist's offer dialog showing the kiosk (not accepted)."""
    desk = await open_desk(browser, site)
    kiosk = await check_in(
        kiosk_browser or browser, kiosk_site or site, record, link=link, at_step=at_step
    )
    await expect(kiosk.page.locator("#queue-position")).to_have_text("1")
    if at_step is not None:
        await at_step(kiosk, "5-waiting")
    dialog = desk.page.locator("#offer-dialog")
    await expect(dialog).to_be_visible(timeout=CALL_TIMEOUT_MS)
    await expect(dialog).to_contain_text(OUTLET_ID)
    if at_step is not None:
        await at_step(desk, "2-offer")
    return Call(kiosk, desk)


async def accept(call: Call, wait_video: bool = True) -> None:
    """The specialist accepts the ringing call; with ``wait_video``, until both see video move."""
    await call.desk.page.get_by_role("button", name="Accept").click()
    await expect(call.kiosk.page.locator("body")).to_have_attribute(
        "data-screen", "call", timeout=CALL_TIMEOUT_MS
    )
    if wait_video:
        await wait_moving_video(call.kiosk, tile(SPECIALIST_ID))
        await wait_moving_video(call.desk, tile(OUTLET_ID))


async def admit_guest(
    browser: Browser,
    desk: PageHandle,
    link: LinkEmulator | None = None,
    before_admit: Callable[[PageHandle], Awaitable[object]] | None = None,
) -> tuple[PageHandle, str]:
    """A parent invited from the specialist's console joins (behind ``link`` if given) and is
    admitted: their page, in the call, and their participant id. ``before_admit(guest)`` is
    awaited once the guest waits at the door. The page is closed if that fails."""
    console = desk.page
    await console.get_by_role("button", name="Invite a parent").click()
    await expect(console.locator("#invite-url")).to_have_value(re.compile(r"/join/\S+$"))
    invite_url = await console.locator("#invite-url").input_value()
    guest = await open_page(browser, "guest", invite_url, PHONE_VIEWPORT, link)
    try:
        await guest.page.get_by_label("Your name").fill("Mother")
        await guest.page.get_by_role("button", name="Join").click()
        admit = console.locator("#door-list li").get_by_role("button", name="Admit")
        await admit.wait_for()
        if before_admit is not None:
            await before_admit(guest)
        await admit.click()
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
