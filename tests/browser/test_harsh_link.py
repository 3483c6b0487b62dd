"""Real Chromium behind the harsher links of issue 24 (benchmarks.link_emulator on 127.0.0.1):
a kiosk downlink of 120 kbit/s, +150 ms, 3 % loss and a 300 ms queue shows the specialist within
2 s of connecting and does not freeze for over 1 s in a 30 s call; a kiosk uplink of 200 kbit/s
with the same delay, loss and queue is to reach the specialist at a steady rate (not yet: see
its mark). Each prints what it measured."""

from __future__ import annotations

import asyncio
import statistics
import time

import pytest
from playwright.async_api import Browser, expect

from benchmarks.browser_call import (
    CALL_TIMEOUT_MS,
    OUTLET_ID,
    SPECIALIST_ID,
    PageHandle,
    check_in,
    media_snapshot,
    open_desk,
    start_call,
)
from benchmarks.link_emulator import LinkEmulator, LinkShape
from benchmarks.receive_figures import (
    fps_per_second,
    longest_stall_s,
    paused_s,
    sample_media,
    sent_fps,
    sent_kbps,
    sent_limitation,
)
from tests.conftest import RunningServer

pytestmark = pytest.mark.asyncio(loop_scope="session")

HARSH = LinkShape(capacity_kbps=120, delay_ms=150, loss=0.03, queue_ms=300)
HARSH_UPLINK = LinkShape(capacity_kbps=200, delay_ms=150, loss=0.03, queue_ms=300)
DELAY_ONLY = LinkShape(delay_ms=150)
CALL_S = 30.0
FIRST_PICTURE_WITHIN_S = 2.0
LONGEST_FREEZE_S = 1.0
# What the kiosk's network check measures through such a link (its HTTP is not shaped here).
MEASURED_DOWNLINK_KBPS = 120
# getStats every 0.25 s: at 0.5 s two intervals and the calls' own time already read over 1 s.
SAMPLE_S = 0.25


async def first_picture(kiosk: PageHandle, timeout_s: float = 30.0) -> tuple[float, float]:
    """``(connected, first frame)``: when the kiosk's connection came up and when its first
    frame of the specialist's video was decoded (``time.monotonic()``, polled every 0.1 s)."""
    deadline = time.monotonic() + timeout_s
    connected_at = None
    while time.monotonic() < deadline:
        snapshot = await media_snapshot(kiosk, SPECIALIST_ID)
        now = time.monotonic()
        if connected_at is None and snapshot["state"] == "connected":
            connected_at = now
        if connected_at is not None and snapshot["video"]["frames"] > 0:
            return connected_at, now
        await asyncio.sleep(0.1)
    raise AssertionError(f"no picture within {timeout_s} s (connected at {connected_at})")


async def test_a_kiosk_on_a_harsh_downlink_sees_the_specialist_soon_and_without_freezes(
    browser: Browser, live_server: RunningServer
) -> None:
    async with LinkEmulator(downlink=HARSH, uplink=DELAY_ONLY, seed=24) as link:
        desk = await open_desk(browser, live_server)
        kiosk = await check_in(browser, live_server, link=link)
        try:
            await kiosk.page.evaluate(
                "(kbps) => sessionStorage.setItem('teleconsult.downlink_kbps', String(kbps))",
                MEASURED_DOWNLINK_KBPS,
            )
            await expect(desk.page.locator("#offer-dialog")).to_be_visible(timeout=CALL_TIMEOUT_MS)
            await desk.page.get_by_role("button", name="Accept").click()
            connected_at, first_at = await first_picture(kiosk)
            samples = await sample_media(
                kiosk,
                max(2.0, CALL_S - (time.monotonic() - connected_at)),
                SPECIALIST_ID,
                SAMPLE_S,
            )
            far = await sample_media(desk, 1.0)
            fps = fps_per_second(samples)
            stall = longest_stall_s(samples)
            print(
                f"\nfirst picture {first_at - connected_at:.1f} s after connecting; then "
                f"{fps} fps (median {statistics.median(fps):.1f}), longest freeze {stall:.1f} s, "
                f"video paused {paused_s(samples):.1f} s; specialist sends {sent_fps(far)} fps, "
                f"{sent_kbps(far):.0f} kbit/s, limited by {sent_limitation(far)}; link dropped "
                f"{link.downlink.counters.bytes_dropped_queue} bytes at its queue"
            )
            assert first_at - connected_at <= FIRST_PICTURE_WITHIN_S
            assert stall <= LONGEST_FREEZE_S, (stall, fps)
        finally:
            for handle in (kiosk, desk):
                await handle.context.close()


@pytest.mark.xfail(
    reason="the kiosk's video still freezes for 3-4 s now and then on this uplink (a loss the "
    "retransmission does not repair, then a keyframe through the 300 ms queue): 3.1 and 3.4 s "
    "in two runs (2026-12-08 00:40, 00:42 UTC, load average 7-11), at 15.1 and 9.9 fps median; "
    "before the uplink floor 3.6 s at 2.0 fps median, the kiosk sending 32 kbit/s",
    strict=False,
)
async def test_a_kiosk_on_a_harsh_uplink_reaches_the_specialist_at_a_steady_rate(
    browser: Browser, live_server: RunningServer
) -> None:
    async with LinkEmulator(downlink=DELAY_ONLY, uplink=HARSH_UPLINK, seed=24) as link:
        call = await start_call(browser, live_server, link=link)
        try:
            # The kiosk's sender settles within a few seconds of its first REMB.
            await asyncio.sleep(5.0)
            samples = await sample_media(call.desk, 15.0, OUTLET_ID, SAMPLE_S)
            sender = await sample_media(call.kiosk, 2.0)
            fps = fps_per_second(samples)
            stall = longest_stall_s(samples)
            offered = link.uplink.per_second(
                int(link.uplink.elapsed_s()) - 15, int(link.uplink.elapsed_s()), "offered"
            )
            print(
                f"\nspecialist receives {fps} fps (median {statistics.median(fps):.1f}), longest "
                f"freeze {stall:.1f} s; kiosk sends {sent_fps(sender)} fps, "
                f"{sent_kbps(sender):.0f} kbit/s, limited by {sent_limitation(sender)}; uplink "
                f"offered {[round(b * 8 / 1000) for b in offered]} kbit/s a second, dropped "
                f"{link.uplink.counters.bytes_dropped_queue} bytes at its queue"
            )
            assert stall <= LONGEST_FREEZE_S, (stall, fps)
            assert statistics.median(fps) >= 5.0, fps
            assert min(fps) >= 0.5 * statistics.median(fps), fps
        finally:
            await call.close()
