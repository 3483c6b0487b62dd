"""When a page's <video> shows new frames: the first picture and every freeze, to 50 ms.

``getStats()`` sampled every 0.5 s gives rates but only bounds a freeze to the sampling interval;
a watcher in the page reads the element's ``totalVideoFrames`` every 50 ms instead, from the
moment it is installed (before the call starts, so the first picture is timed from there), and
keeps the gaps between frames of at least :data:`GAP_MIN_S` (bounded in count and lifetime).
The element is looked up by selector at every tick, so a tile that appears later, or is replaced,
is followed.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.browser_call import PageHandle

GAP_MIN_S = 0.2
FREEZE_LONG_S = 1.0
WATCH_MAX_S = 1800

_INSTALL = """
({selector, gapMinMs, lifetimeMs}) => {
  const w = {installed: performance.now(), first: null, last: null, frames: 0, gaps: []};
  window.__frameWatch = window.__frameWatch || {};
  window.__frameWatch[selector] = w;
  let element = null;
  let seen = 0;
  const timer = setInterval(() => {
    const video = document.querySelector(selector);
    if (!video) return;
    const frames = video.getVideoPlaybackQuality().totalVideoFrames;
    if (video !== element || frames < seen) {
      element = video;
      seen = 0;
    }
    if (frames <= seen) return;
    const now = performance.now();
    if (w.first === null) w.first = now;
    else if (now - w.last >= gapMinMs && w.gaps.length < 20000) w.gaps.push([w.last, now]);
    w.last = now;
    w.frames += frames - seen;
    seen = frames;
  }, 50);
  setTimeout(() => clearInterval(timer), lifetimeMs);
  return w.installed;
}
"""

_READ = """
(selector) => {
  const w = (window.__frameWatch || {})[selector];
  return w ? {...w, now: performance.now()} : null;
}
"""


@dataclass(frozen=True)
class FrameLog:
    """A watcher's record, in the page's clock (seconds)."""

    installed: float
    first: float | None
    last: float | None
    now: float
    frames: int
    gaps: list[tuple[float, float]]

    @property
    def first_frame_s(self) -> float | None:
        """Seconds from installing the watcher to the first frame shown."""
        return None if self.first is None else self.first - self.installed


@dataclass(frozen=True)
class Freezes:
    longest_s: float
    over_1s: int


async def install(handle: PageHandle, selector: str) -> float:
    """Start watching ``selector`` in ``handle``'s page; the page's clock now (seconds)."""
    installed: float = await handle.page.evaluate(
        _INSTALL,
        {"selector": selector, "gapMinMs": GAP_MIN_S * 1000, "lifetimeMs": WATCH_MAX_S * 1000},
    )
    return installed / 1000


async def page_clock(handle: PageHandle) -> float:
    """The page's clock (seconds), to mark a window's start and end."""
    now: float = await handle.page.evaluate("performance.now()")
    return now / 1000


async def read(handle: PageHandle, selector: str) -> FrameLog:
    raw = await handle.page.evaluate(_READ, selector)
    if raw is None:
        raise RuntimeError(f"{handle.name}: no frame watcher on {selector}")
    return FrameLog(
        installed=raw["installed"] / 1000,
        first=None if raw["first"] is None else raw["first"] / 1000,
        last=None if raw["last"] is None else raw["last"] / 1000,
        now=raw["now"] / 1000,
        frames=int(raw["frames"]),
        gaps=[(start / 1000, end / 1000) for start, end in raw["gaps"]],
    )


def freezes(log: FrameLog, start: float, end: float) -> Freezes:
    """The freezes seen in ``[start, end]`` (page clock): every gap between frames of at least
    :data:`GAP_MIN_S` overlapping the window, clipped to it, and the time since the last frame
    (or since the window's start if none came) if still frozen at ``end``. No gap that long
    counts as a longest freeze of 0."""
    spans = [(max(a, start), min(b, end)) for a, b in log.gaps if b > start and a < end]
    since = start if log.last is None else max(log.last, start)
    if end - since >= GAP_MIN_S:
        spans.append((since, end))
    lengths = [b - a for a, b in spans]
    return Freezes(
        longest_s=max(lengths, default=0.0),
        over_1s=sum(1 for length in lengths if length > FREEZE_LONG_S),
    )
