"""``teleconsult bench weaklink``: a call in real Chromium with the kiosk behind a weak downlink.

Two runs back to back, with the same emulated link on the kiosk's downlink (by default
250 kbit/s, +40 ms, 1 % random loss, a 500 ms drop-tail queue; +40 ms on its uplink too):

* ``relay``: the kiosk and specialist pages of the app (served by ``teleconsult serve`` as its
  own process on 127.0.0.1) in a consultation; only the kiosk's media crosses the link;
* ``direct``: the same two browsers' cameras and microphones in one page-to-page
  ``RTCPeerConnection`` on 127.0.0.1, the kiosk's side behind the same link.

After the video first moves, ``--warmup`` seconds pass, then ``--duration`` seconds are measured
from the kiosk's and the specialist's ``getStats()`` (every 0.5 s) and the link's own counters.

``--photo-kib N`` (relay run): as the measured window starts, the kiosk sends a photo of about
N KiB (a noisy JPEG) through its "Send a photo" button; the kiosk's HTTP and WebSocket then go
through a TCP relay paced at ``--photo-kbps`` (default: the downlink's capacity), and the run
reports how long the photo took to reach the server alongside the call (the network check at
check-in runs unpaced, so the kiosk keeps its video).
Only 127.0.0.1 is used; every loop is bounded in time. Needs Playwright and /usr/bin/chromium
(the project's test extras).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import secrets
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import ClientError, ClientSession
from PIL import Image
from playwright.async_api import Browser, FilePayload, async_playwright

from benchmarks._processes import free_port
from benchmarks.browser_call import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESK_VIEWPORT,
    KIOSK_VIEWPORT,
    SPECIALIST_ID,
    PageHandle,
    start_call,
    wait_moving_video,
)
from benchmarks.direct_call import connect_direct, open_direct
from benchmarks.link_emulator import LinkEmulator, LinkShape
from benchmarks.receive_figures import (
    Sample,
    concealment_pct,
    fps_per_second,
    longest_stall_s,
    loss_pct,
    paused_s,
    received_kbps,
    retransmitted_pct,
    sample_media,
    sent_fps,
    sent_kbps,
    sent_limitation,
    sent_resolution,
)
from benchmarks.tcp_shaper import TcpShaper
from rooms.roles import Role
from rooms.tasks import within
from signaling.auth import TokenAuthority

MAX_DURATION_S = 300.0
SERVER_START_S = 20.0
SAMPLE_INTERVAL_S = 0.5


@dataclass
class RunFigures:
    """What the kiosk received, what the far side sent and what the link carried, in one run."""

    mode: str
    window_s: float
    fps_median: float
    fps_min: float
    seconds_below_1fps: int
    longest_stall_s: float
    video_loss_pct: float
    audio_concealment_pct: float
    received_kbps: float
    sender_kbps: float
    sender_resolution: str
    sender_fps_median: float
    sender_limited_by: str
    seconds_video_paused: float
    link_capacity_kbps: float | None
    link_offered_kbps: float
    link_offered_max_1s_kbps: float
    link_delivered_kbps: float
    link_dropped_by_queue_pct: float
    retransmitted_pct: float | None
    connection_states: list[str]
    photo_bytes: int | None = None
    photo_upload_s: float | None = None


@dataclass
class Report:
    date: str
    downlink: dict[str, Any]
    uplink: dict[str, Any]
    load_avg_before: list[float]
    load_avg_after: list[float]
    cpus: int
    runs: list[RunFigures]
    targets: dict[str, bool]


class AppServer:
    """``teleconsult serve`` as a child process on a free 127.0.0.1 port."""

    def __init__(self) -> None:
        self.secret = secrets.token_urlsafe(48)
        self.port = free_port()
        self._authority = TokenAuthority(self.secret)
        self._process: asyncio.subprocess.Process | None = None
        self._workdir = tempfile.TemporaryDirectory(prefix="teleconsult-weaklink-")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def token(self, role: Role, subject: str, **kwargs: Any) -> str:
        return self._authority.issue(role, subject, **kwargs)

    async def __aenter__(self) -> AppServer:
        command = [sys.executable, "-m", "web.cli", "serve", "--port", str(self.port)]
        command += ["--media-ip", "127.0.0.1", f"--secret={self.secret}", "--log-level", "WARNING"]
        workdir = Path(self._workdir.name)
        command += ["--recordings", str(workdir / "recordings")]
        command += ["--records-url", f"sqlite:///{workdir / 'records.db'}"]
        self._process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.DEVNULL
        )
        deadline = time.monotonic() + SERVER_START_S
        async with ClientSession() as session:
            while time.monotonic() < deadline:
                if self._process.returncode is not None:
                    raise RuntimeError("teleconsult serve exited at start")
                try:
                    async with session.get(f"{self.url}/healthz") as response:
                        if response.status == 200:
                            return self
                except ClientError:
                    pass
                await asyncio.sleep(0.2)
        await self.__aexit__()
        raise RuntimeError(f"teleconsult serve did not answer within {SERVER_START_S:.0f} s")

    async def __aexit__(self, *exc: object) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                await within(self._process.wait(), 10)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()
        self._workdir.cleanup()


async def measure(
    kiosk: PageHandle,
    far: PageHandle,
    link: LinkEmulator,
    mode: str,
    far_id: str | None,
    warmup_s: float,
    duration_s: float,
) -> RunFigures:
    """Sample both pages for ``duration_s`` after ``warmup_s`` and read the link's counters."""
    await asyncio.sleep(warmup_s)
    start_s = int(link.downlink.elapsed_s()) + 1
    await asyncio.sleep(start_s - link.downlink.elapsed_s())
    received, sent = await asyncio.gather(
        sample_media(kiosk, duration_s, far_id, SAMPLE_INTERVAL_S),
        sample_media(far, duration_s, None, SAMPLE_INTERVAL_S),
    )
    end_s = int(link.downlink.elapsed_s())
    return figures(mode, received, sent, link, start_s, end_s)


def figures(
    mode: str,
    received: list[Sample],
    sent: list[Sample],
    link: LinkEmulator,
    start_s: int,
    end_s: int,
) -> RunFigures:
    fps = fps_per_second(received)
    offered = link.downlink.per_second(start_s, end_s, "offered")
    seconds = max(1, end_s - start_s)
    counters = link.downlink.counters
    return RunFigures(
        mode=mode,
        window_s=round(received[-1].at - received[0].at, 1),
        fps_median=round(statistics.median(fps), 1),
        fps_min=round(min(fps), 1),
        seconds_below_1fps=sum(1 for rate in fps if rate < 1.0),
        longest_stall_s=round(longest_stall_s(received), 1),
        video_loss_pct=round(loss_pct(received, "video"), 1),
        audio_concealment_pct=round(concealment_pct(received), 2),
        received_kbps=round(received_kbps(received), 1),
        sender_kbps=round(sent_kbps(sent), 1),
        sender_resolution=sent_resolution(sent),
        sender_fps_median=round(sent_fps(sent), 1),
        sender_limited_by=sent_limitation(sent),
        seconds_video_paused=round(paused_s(received), 1),
        link_capacity_kbps=link.downlink.shape.capacity_kbps,
        link_offered_kbps=round(sum(offered) * 8 / 1000 / seconds, 1),
        link_offered_max_1s_kbps=round(max(offered, default=0) * 8 / 1000, 1),
        link_delivered_kbps=round(link.downlink.rate_kbps(start_s, end_s, "delivered"), 1),
        link_dropped_by_queue_pct=round(
            100 * counters.bytes_dropped_queue / max(1, counters.bytes_offered), 1
        ),
        retransmitted_pct=_rounded(retransmitted_pct(received)),
        connection_states=sorted({str(s.snapshot["state"]) for s in received}),
    )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


@dataclass
class PhotoLoad:
    """A photo the kiosk sends during the relay run, over an uplink of ``kbps``."""

    kib: int
    kbps: float


def noisy_jpeg(kib: int) -> bytes:
    """A JPEG of noise of at least ``kib`` KiB (noise does not compress, so its size is known)."""
    side = 64
    while True:
        noise = random.Random(5).randbytes(side * side * 3)
        out = io.BytesIO()
        Image.frombytes("RGB", (side, side), noise).save(out, "JPEG", quality=90)
        if out.tell() >= kib * 1024 or side >= 4096:
            return out.getvalue()
        side = int(side * 1.15) + 1


async def send_photo(kiosk: PageHandle, photo: bytes) -> float:
    """Send ``photo`` from the kiosk's "Send a photo" button; seconds until the server kept it."""
    started = time.monotonic()
    await kiosk.page.locator("#photo-file").set_input_files(
        files=[FilePayload(name="photo.jpg", mimeType="image/jpeg", buffer=photo)]
    )
    await kiosk.page.wait_for_selector(
        ".photo-tools[data-last-photo]", state="attached", timeout=MAX_DURATION_S * 1000
    )
    return time.monotonic() - started


async def relay_run(
    browser: Browser,
    downlink: LinkShape,
    uplink: LinkShape,
    warmup_s: float,
    duration_s: float,
    photo: PhotoLoad | None = None,
) -> RunFigures:
    async with (
        AppServer() as server,
        LinkEmulator(downlink, uplink) as link,
        TcpShaper(server.port, None) as shaper,
    ):
        kiosk_site = _Through(shaper.url, server) if photo else None
        call = await start_call(browser, server, link=link, kiosk_site=kiosk_site)
        try:
            measured = measure(
                call.kiosk, call.desk, link, "relay", SPECIALIST_ID, warmup_s, duration_s
            )
            if photo is None:
                return await measured
            image = noisy_jpeg(photo.kib)
            shaper.limit(photo.kbps)
            figures_, took_s = await asyncio.gather(
                measured, _after(warmup_s, send_photo(call.kiosk, image))
            )
            return replace(figures_, photo_bytes=len(image), photo_upload_s=round(took_s, 1))
        finally:
            await call.close()


async def _after(delay_s: float, work: Awaitable[float]) -> float:
    await asyncio.sleep(delay_s)
    return await work


@dataclass
class _Through:
    """The app as the kiosk reaches it through the TCP relay."""

    url: str
    server: AppServer

    def token(self, role: Role, subject: str, **kwargs: Any) -> str:
        return self.server.token(role, subject, **kwargs)


async def direct_run(
    browser: Browser, downlink: LinkShape, uplink: LinkShape, warmup_s: float, duration_s: float
) -> RunFigures:
    async with AppServer() as server, LinkEmulator(downlink, uplink) as link:
        kiosk = await open_direct(browser, "kiosk", server, KIOSK_VIEWPORT)
        far = await open_direct(browser, "specialist", server, DESK_VIEWPORT)
        try:
            await connect_direct(("specialist", far), ("kiosk", kiosk), link)
            await wait_moving_video(kiosk, "video")
            return await measure(kiosk, far, link, "direct", None, warmup_s, duration_s)
        finally:
            for page in (kiosk, far):
                await page.context.close()


async def run(args: argparse.Namespace) -> Report:
    downlink = LinkShape(
        capacity_kbps=args.kbps,
        delay_ms=args.delay_ms,
        loss=args.loss_pct / 100,
        queue_ms=args.queue_ms,
    )
    uplink = LinkShape(delay_ms=args.delay_ms)
    duration = min(max(args.duration, 5.0), MAX_DURATION_S)
    before = list(os.getloadavg())
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            photo = None
            if args.photo_kib:
                photo = PhotoLoad(args.photo_kib, args.photo_kbps or downlink.capacity_kbps or 0)
            relay = await relay_run(browser, downlink, uplink, args.warmup, duration, photo)
            direct = await direct_run(browser, downlink, uplink, args.warmup, duration)
        finally:
            await browser.close()
    capacity = downlink.capacity_kbps or float("inf")
    targets = {
        "relay_fps_at_least_80pct_of_direct": relay.fps_median >= 0.8 * direct.fps_median,
        "relay_no_stall_over_2s": relay.longest_stall_s <= 2.0,
        "relay_offered_within_capacity": relay.link_offered_kbps <= capacity,
        "relay_concealment_within_1_point_of_direct": relay.audio_concealment_pct
        <= direct.audio_concealment_pct + 1.0,
    }
    return Report(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        downlink=asdict(downlink),
        uplink=asdict(uplink),
        load_avg_before=[round(v, 2) for v in before],
        load_avg_after=[round(v, 2) for v in os.getloadavg()],
        cpus=os.cpu_count() or 0,
        runs=[relay, direct],
        targets=targets,
    )


_ROWS = [
    ("received fps, median", "fps_median", ""),
    ("received fps, min (1 s)", "fps_min", ""),
    ("seconds below 1 fps", "seconds_below_1fps", ""),
    ("longest stall", "longest_stall_s", " s"),
    ("video loss", "video_loss_pct", " %"),
    ("audio concealment", "audio_concealment_pct", " %"),
    ("received", "received_kbps", " kbit/s"),
    ("far sender's video", "sender_kbps", " kbit/s"),
    ("far sender's resolution", "sender_resolution", ""),
    ("far sender's fps, median", "sender_fps_median", ""),
    ("far sender limited by", "sender_limited_by", ""),
    ("video paused by the server", "seconds_video_paused", " s"),
    ("offered into the link", "link_offered_kbps", " kbit/s"),
    ("offered, worst second", "link_offered_max_1s_kbps", " kbit/s"),
    ("delivered by the link", "link_delivered_kbps", " kbit/s"),
    ("dropped by the link's queue", "link_dropped_by_queue_pct", " %"),
    ("retransmitted share (video)", "retransmitted_pct", " %"),
    ("connection states seen", "connection_states", ""),
    ("photo sent alongside (bytes)", "photo_bytes", ""),
    ("photo's upload time", "photo_upload_s", " s"),
]


def table(report: Report) -> str:
    shape = report.downlink
    lines = [
        f"weaklink {report.date}: kiosk downlink {shape['capacity_kbps']} kbit/s, "
        f"+{shape['delay_ms']:.0f} ms, {100 * shape['loss']:.1f} % loss, "
        f"{shape['queue_ms']:.0f} ms queue; {report.runs[0].window_s:.0f} s measured per run",
        f"load average before {report.load_avg_before}, after {report.load_avg_after} "
        f"({report.cpus} CPUs)",
        f"{'':32}{'relay':>16}{'direct':>16}",
    ]
    for label, name, unit in _ROWS:
        cells = []
        for figures_ in report.runs:
            value = getattr(figures_, name)
            text = ",".join(value) if isinstance(value, list) else ("–" if value is None else value)
            cells.append(f"{text}{unit if value is not None else ''}")
        lines.append(f"{label:32}{cells[0]:>16}{cells[1]:>16}")
    for name, met in report.targets.items():
        lines.append(f"target {name.replace('_', ' ')}: {'met' if met else 'NOT met'}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Entry point for ``teleconsult bench weaklink`` (``--matrix``: every profile, see
    :mod:`benchmarks.weaklink_matrix`)."""
    if "--matrix" in argv:
        from benchmarks import weaklink_matrix

        return weaklink_matrix.main([arg for arg in argv if arg != "--matrix"])
    parser = argparse.ArgumentParser(
        prog="teleconsult bench weaklink", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--kbps", type=float, default=250.0, help="downlink capacity (kbit/s)")
    parser.add_argument("--delay-ms", type=float, default=40.0, help="one-way delay each way")
    parser.add_argument("--loss-pct", type=float, default=1.0, help="random downlink loss (%%)")
    parser.add_argument("--queue-ms", type=float, default=500.0, help="drop-tail queue (ms)")
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring")
    parser.add_argument(
        "--photo-kib", type=int, default=0, help="send a photo of this size during the relay run"
    )
    parser.add_argument(
        "--photo-kbps", type=float, default=0.0, help="the photo's uplink (default: --kbps)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--matrix",
        action="store_true",
        help="run every profile instead (options: --duration --warmup --profiles --runs --json)",
    )
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        print(f"teleconsult bench weaklink: {CHROMIUM} is not installed", file=sys.stderr)
        return 2
    report = asyncio.run(run(args))
    print(json.dumps(asdict(report)) if args.json else table(report))
    return 0
