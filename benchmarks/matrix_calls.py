"""The calls behind ``bench weaklink --matrix``: one profile through the server or direct.

Every path run gets a fresh Chromium and a fresh ``teleconsult serve`` (the direct pages use its
origin only, 127.0.0.1 being a secure context for the camera), and is bounded in time; a run that
fails is reported with its error and the matrix goes on.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from playwright.async_api import Browser, async_playwright

from benchmarks.browser_call import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESK_VIEWPORT,
    KIOSK_VIEWPORT,
    OUTLET_ID,
    PHONE_VIEWPORT,
    SPECIALIST_ID,
    PageHandle,
    accept,
    admit_guest,
    ring,
    start_call,
    tile,
)
from benchmarks.direct_call import connect_direct, open_direct
from benchmarks.frame_watch import Freezes, freezes, install, page_clock, read
from benchmarks.link_emulator import LinkEmulator, LinkShape
from benchmarks.receive_figures import (
    Sample,
    concealment_pct,
    fps_per_second,
    loss_pct,
    received_kbps,
    sample_media,
)
from benchmarks.weaklink import SAMPLE_INTERVAL_S, AppServer
from benchmarks.weaklink_matrix import (
    LIFTED,
    LIMITED,
    PathName,
    PathRun,
    Profile,
    ProfileResult,
    Role,
    View,
    targets,
)
from rooms.tasks import within

FIRST_FRAME_WAIT_S = 30.0
RUN_SETUP_S = 120.0
LIFTED_SETTLE_S = 10.0


@dataclass(frozen=True)
class Watched:
    """``handle`` (the ``receiver``) receiving ``sender``, whose tile is ``tile_id``; ``timed``:
    its watcher went in before the call started, so its first frame is timed."""

    receiver: Role
    sender: Role
    handle: PageHandle
    tile_id: str
    timed: bool

    @property
    def selector(self) -> str:
        return tile(self.tile_id)


async def wait_first_frame(watched: list[Watched], timeout_s: float = FIRST_FRAME_WAIT_S) -> None:
    """Until every watched tile showed a frame, or ``timeout_s`` (the window then shows it)."""
    deadline = time.monotonic() + timeout_s
    for item in watched:
        while time.monotonic() < deadline:
            if (await read(item.handle, item.selector)).first is not None:
                break
            await asyncio.sleep(0.2)


def schedule_outage(link: LinkEmulator, seconds: float, window_s: float) -> None:
    """Nothing crosses ``link`` either way for ``seconds`` in the middle of the next window."""
    shapes = {}
    for name, direction in (("downlink", link.downlink), ("uplink", link.uplink)):
        middle = direction.elapsed_s() + window_s / 2
        shapes[name] = replace(direction.shape, outage=(middle - seconds / 2, middle + seconds / 2))
    link.set_shape(downlink=shapes["downlink"], uplink=shapes["uplink"])


async def measure_window(watched: list[Watched], duration_s: float, phase: str = "") -> list[View]:
    """Sample every watched tile for ``duration_s``: getStats every 0.5 s and the frame log."""
    starts = await asyncio.gather(*(page_clock(item.handle) for item in watched))
    samples = await asyncio.gather(
        *(
            sample_media(item.handle, duration_s, item.tile_id, SAMPLE_INTERVAL_S)
            for item in watched
        )
    )
    ends = await asyncio.gather(*(page_clock(item.handle) for item in watched))
    views = []
    for item, start, end, received in zip(watched, starts, ends, samples, strict=True):
        log = await read(item.handle, item.selector)
        views.append(view_of(item, phase, received, log.first_frame_s, freezes(log, start, end)))
    return views


def view_of(
    item: Watched, phase: str, received: list[Sample], first_frame_s: float | None, frozen: Freezes
) -> View:
    """The figures of one watched tile over one window."""
    fps = fps_per_second(received) or [0.0]
    return View(
        receiver=item.receiver,
        sender=item.sender,
        phase=phase,
        fps_median=round(statistics.median(fps), 1),
        fps_min=round(min(fps), 1),
        longest_freeze_s=round(frozen.longest_s, 2),
        freezes_over_1s=frozen.over_1s,
        video_loss_pct=round(loss_pct(received, "video"), 1),
        audio_concealment_pct=round(concealment_pct(received), 2),
        received_kbps=round(received_kbps(received), 1),
        first_frame_s=round(first_frame_s, 2) if item.timed and first_frame_s is not None else None,
    )


async def two_party_window(
    link: LinkEmulator, profile: Profile, watched: Watched, warmup_s: float, duration_s: float
) -> list[View]:
    await wait_first_frame([watched])
    await asyncio.sleep(warmup_s)
    if profile.outage_s:
        schedule_outage(link, profile.outage_s, duration_s)
    return await measure_window([watched], duration_s)


async def guest_windows(
    link: LinkEmulator,
    profile: Profile,
    watched: list[Watched],
    warmup_s: float,
    duration_s: float,
) -> list[View]:
    """The limited window, then the same call with the guest's link lifted (delay only)."""
    await wait_first_frame(watched)
    await asyncio.sleep(warmup_s)
    limited = await measure_window(watched, duration_s, LIMITED)
    link.set_shape(downlink=LinkShape(delay_ms=profile.downlink.delay_ms, queue_ms=None))
    await asyncio.sleep(max(warmup_s, LIFTED_SETTLE_S))
    return limited + await measure_window(watched, duration_s, LIFTED)


Runner = Callable[[Browser, Profile, float, float], Awaitable[list[View]]]
_VIEWPORTS = {"kiosk": KIOSK_VIEWPORT, "specialist": DESK_VIEWPORT, "guest": PHONE_VIEWPORT}
_RELAY_IDS: dict[Role, str] = {"kiosk": OUTLET_ID, "specialist": SPECIALIST_ID}


async def relay_run(
    browser: Browser, profile: Profile, warmup_s: float, duration_s: float
) -> list[View]:
    async with AppServer() as server, LinkEmulator(profile.downlink, profile.uplink) as link:
        if profile.receiver == "guest":
            return await _relay_guest(browser, server, link, profile, warmup_s, duration_s)
        call = await ring(browser, server, link=link)
        try:
            page = call.kiosk if profile.receiver == "kiosk" else call.desk
            watched = Watched(
                profile.receiver, profile.sender, page, _RELAY_IDS[profile.sender], True
            )
            await install(page, watched.selector)
            await accept(call, wait_video=False)
            return await two_party_window(link, profile, watched, warmup_s, duration_s)
        finally:
            await call.close()


async def _relay_guest(
    browser: Browser,
    server: AppServer,
    link: LinkEmulator,
    profile: Profile,
    warmup_s: float,
    duration_s: float,
) -> list[View]:
    call = await start_call(browser, server)
    guest: PageHandle | None = None
    try:
        watched = [
            Watched("kiosk", "specialist", call.kiosk, SPECIALIST_ID, False),
            Watched("specialist", "kiosk", call.desk, OUTLET_ID, False),
        ]
        for item in watched:
            await install(item.handle, item.selector)

        async def watch_guest(page: PageHandle) -> None:
            for sender in ("kiosk", "specialist"):
                watched.append(Watched("guest", sender, page, _RELAY_IDS[sender], True))
                await install(page, watched[-1].selector)

        guest, _ = await admit_guest(browser, call.desk, link, watch_guest)
        return await guest_windows(link, profile, watched, warmup_s, duration_s)
    finally:
        if guest is not None:
            await guest.context.close()
        await call.close()


async def direct_run(
    browser: Browser, profile: Profile, warmup_s: float, duration_s: float
) -> list[View]:
    roles: list[Role] = ["kiosk", "specialist"]
    if profile.receiver == "guest":
        roles.append("guest")
    async with AppServer() as server, LinkEmulator(profile.downlink, profile.uplink) as link:
        pages: dict[Role, PageHandle] = {}
        try:
            for role in roles:
                pages[role] = await open_direct(browser, role, server, _VIEWPORTS[role])
            if profile.receiver != "guest":
                watched = Watched(
                    profile.receiver, profile.sender, pages[profile.receiver], profile.sender, True
                )
                await install(watched.handle, watched.selector)
                await connect_direct(
                    ("specialist", pages["specialist"]), ("kiosk", pages["kiosk"]), link
                )
                return await two_party_window(link, profile, watched, warmup_s, duration_s)
            mesh = [
                Watched("kiosk", "specialist", pages["kiosk"], "specialist", False),
                Watched("specialist", "kiosk", pages["specialist"], "kiosk", False),
                Watched("guest", "kiosk", pages["guest"], "kiosk", True),
                Watched("guest", "specialist", pages["guest"], "specialist", True),
            ]
            for item in mesh[:2]:
                await install(item.handle, item.selector)
            await connect_direct(
                ("specialist", pages["specialist"]), ("kiosk", pages["kiosk"]), None
            )
            await wait_first_frame(mesh[:2])
            for item in mesh[2:]:
                await install(item.handle, item.selector)
            for sender in ("kiosk", "specialist"):
                await connect_direct((sender, pages[sender]), ("guest", pages["guest"]), link)
            return await guest_windows(link, profile, mesh, warmup_s, duration_s)
        finally:
            for handle in pages.values():
                await handle.context.close()


async def _path(path: PathName, run: Awaitable[list[View]], bound_s: float) -> PathRun:
    """One path run, bounded; a failure is kept as the run's error."""
    try:
        return PathRun(path, await within(run, bound_s))
    except Exception as exc:  # any failure is reported and the matrix goes on
        first_line = (str(exc) or type(exc).__name__).splitlines()[0]
        return PathRun(path, error=first_line[:200])


async def run_profile(
    profile: Profile, run: int, warmup_s: float, duration_s: float
) -> ProfileResult:
    """The profile through the server, then direct, each in a fresh Chromium."""
    windows = 2 if profile.receiver == "guest" else 1
    bound_s = RUN_SETUP_S + windows * (duration_s + max(warmup_s, LIFTED_SETTLE_S) + 5)
    runs = []
    paths: tuple[tuple[PathName, Runner], ...] = (("relay", relay_run), ("direct", direct_run))
    for path, runner in paths:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
            )
            try:
                runs.append(
                    await _path(path, runner(browser, profile, warmup_s, duration_s), bound_s)
                )
            finally:
                await browser.close()
    relay, direct = runs
    return ProfileResult(
        profile.name, profile.summary, run, relay, direct, targets(profile, relay, direct)
    )


async def run_matrix(
    profiles: list[Profile], runs: int, warmup_s: float, duration_s: float
) -> list[ProfileResult]:
    """Every profile, ``runs`` times over."""
    return [
        await run_profile(profile, run, warmup_s, duration_s)
        for run in range(1, runs + 1)
        for profile in profiles
    ]
