"""``teleconsult bench weaklink --matrix``: every weak-link profile, through the server and direct.

Each profile runs twice back to back in real Chromium: ``relay`` (the app's pages talking to
``teleconsult serve``) and ``direct`` (the same browsers' cameras in page-to-page
``RTCPeerConnection``\\ s), one participant's link emulated the same way in both
(:mod:`benchmarks.link_emulator`). Per run, what the judged page received from each other page:
frames per second (median and minimum over whole seconds), the longest freeze and the freezes
over 1 s (:mod:`benchmarks.frame_watch`), video loss, audio concealment
(``concealedSamples / totalSamplesReceived``) and the time from the call's start to the first
picture. Then per profile, whether issue 24's targets hold.

The three-party profile (``guest``): kiosk and specialist in a call, a guest admitted behind a
150 kbit/s downlink; a window is measured with the link limited, then the limit is lifted and
the same call is measured again: the guest's received frame rate is judged in the first window
and the others' (what the kiosk and the specialist receive from each other) against the second.
Its direct path is a mesh (each browser connected to each), the guest's two connections sharing
its one emulated link.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from benchmarks.link_emulator import BurstLoss, LinkShape

Role = Literal["kiosk", "specialist", "guest"]
PathName = Literal["relay", "direct"]
MAX_DURATION_S = 300.0
MAX_RUNS = 10
FIRST_PICTURE_S = 2.0
FREEZE_SLACK_S = 0.5
GUEST_MIN_FPS = 7.0
OTHERS_KEEP = 0.9
LIMITED, LIFTED = "limited", "lifted"


@dataclass(frozen=True)
class Profile:
    """One link: ``downlink``/``uplink`` of the shaped participant (the guest in a three-party
    profile, else the kiosk); ``receiver``: the page whose reception is judged; ``outage_s``:
    a total outage of that length (both directions) in the middle of the measured window."""

    name: str
    summary: str
    downlink: LinkShape
    uplink: LinkShape
    receiver: Role
    outage_s: float = 0.0

    @property
    def shaped(self) -> Role:
        return "guest" if self.receiver == "guest" else "kiosk"

    @property
    def sender(self) -> Role:
        return "kiosk" if self.receiver == "specialist" else "specialist"


def _delay(ms: float) -> LinkShape:
    return LinkShape(delay_ms=ms, queue_ms=None)


PROFILES = (
    Profile(
        "baseline",
        "kiosk downlink 250 kbit/s, +40 ms, 1 % loss, 500 ms queue",
        LinkShape(250, delay_ms=40, loss=0.01, queue_ms=500),
        _delay(40),
        "kiosk",
    ),
    Profile(
        "narrow",
        "kiosk downlink 120 kbit/s, +150 ms, 3 % loss, 300 ms queue",
        LinkShape(120, delay_ms=150, loss=0.03, queue_ms=300),
        _delay(150),
        "kiosk",
    ),
    Profile(
        "bursty",
        "kiosk downlink 400 kbit/s, +40 ms, 5 % loss in bursts of 4 packets, 500 ms queue",
        LinkShape(400, delay_ms=40, burst=BurstLoss.of(0.05, 4), queue_ms=500),
        _delay(40),
        "kiosk",
    ),
    Profile(
        "outage",
        "baseline link with a 3 s total outage in the middle of the window",
        LinkShape(250, delay_ms=40, loss=0.01, queue_ms=500),
        _delay(40),
        "kiosk",
        outage_s=3.0,
    ),
    Profile(
        "uplink",
        "kiosk uplink 200 kbit/s, +40 ms, 500 ms queue; the specialist's reception",
        _delay(40),
        LinkShape(200, delay_ms=40, queue_ms=500),
        "specialist",
    ),
    Profile(
        "guest",
        "three-party; guest downlink 150 kbit/s, +40 ms, 500 ms queue, then lifted",
        LinkShape(150, delay_ms=40, queue_ms=500),
        _delay(40),
        "guest",
    ),
)


def pick_profiles(names: str | None) -> list[Profile]:
    """The profiles named (comma-separated, in the matrix's order), all if ``names`` is empty."""
    if not names:
        return list(PROFILES)
    wanted = {name.strip() for name in names.split(",") if name.strip()}
    unknown = wanted - {profile.name for profile in PROFILES}
    if unknown:
        known = ", ".join(profile.name for profile in PROFILES)
        raise ValueError(f"unknown profile(s) {', '.join(sorted(unknown))}; known: {known}")
    return [profile for profile in PROFILES if profile.name in wanted]


@dataclass
class View:
    """What ``receiver`` got from ``sender`` over one measured window (``phase``: the guest
    profile's ``limited``/``lifted`` window, else empty)."""

    receiver: Role
    sender: Role
    phase: str
    fps_median: float
    fps_min: float
    longest_freeze_s: float
    freezes_over_1s: int
    video_loss_pct: float
    audio_concealment_pct: float
    received_kbps: float
    first_frame_s: float | None


@dataclass
class PathRun:
    """One profile on one path; ``error`` if the run could not be measured."""

    path: PathName
    views: list[View] = field(default_factory=list)
    error: str | None = None


@dataclass
class ProfileResult:
    profile: str
    summary: str
    run: int
    relay: PathRun
    direct: PathRun
    targets: dict[str, bool] = field(default_factory=dict)


@dataclass
class MatrixReport:
    date: str
    duration_s: float
    warmup_s: float
    load_avg_before: list[float]
    load_avg_after: list[float]
    cpus: int
    results: list[ProfileResult]


TARGET_LABELS = {
    "relay_fps_median_at_least_direct": "relay fps median >= direct",
    "relay_longest_freeze_within_direct_plus_0_5s": "relay longest freeze <= direct + 0.5 s",
    "relay_freezes_over_1s_at_most_direct": "relay freezes > 1 s <= direct",
    "first_picture_within_2s_both_paths": "first picture <= 2 s (both paths)",
    "relay_guest_at_least_7fps": "relay guest >= 7 fps",
    "relay_others_keep_90pct_of_fps_and_kbps": "relay others keep >= 90 % of fps and kbit/s",
}


def judged(run: PathRun, profile: Profile) -> list[View]:
    """The views the relay-against-direct targets compare: the receiver's, limited phase."""
    return [v for v in run.views if v.receiver == profile.receiver and v.phase in ("", LIMITED)]


def _pairs(profile: Profile, relay: PathRun, direct: PathRun) -> list[tuple[View, View]]:
    by_key = {(v.receiver, v.sender, v.phase): v for v in judged(direct, profile)}
    pairs = []
    for view in judged(relay, profile):
        other = by_key.get((view.receiver, view.sender, view.phase))
        if other is not None:
            pairs.append((view, other))
    return pairs


def targets(profile: Profile, relay: PathRun, direct: PathRun) -> dict[str, bool]:
    """Issue 24's targets for one profile (a target with nothing measured is not met)."""
    pairs = _pairs(profile, relay, direct)
    measured = bool(pairs) and relay.error is None and direct.error is None

    def every(check: list[bool]) -> bool:
        return measured and bool(check) and all(check)

    result = {
        "relay_fps_median_at_least_direct": every([r.fps_median >= d.fps_median for r, d in pairs]),
        "relay_longest_freeze_within_direct_plus_0_5s": every(
            [r.longest_freeze_s <= d.longest_freeze_s + FREEZE_SLACK_S for r, d in pairs]
        ),
        "relay_freezes_over_1s_at_most_direct": every(
            [r.freezes_over_1s <= d.freezes_over_1s for r, d in pairs]
        ),
        "first_picture_within_2s_both_paths": every(
            [
                v.first_frame_s is not None and v.first_frame_s <= FIRST_PICTURE_S
                for r, d in pairs
                for v in (r, d)
            ]
        ),
    }
    if profile.receiver == "guest":
        result["relay_guest_at_least_7fps"] = every(
            [r.fps_median >= GUEST_MIN_FPS for r, _ in pairs]
        )
        result["relay_others_keep_90pct_of_fps_and_kbps"] = others_keep(relay)
    return result


def others_keep(run: PathRun) -> bool:
    """The kiosk and the specialist (what each receives from the other) keep at least 90 % of
    their lifted-window fps and kbit/s while the guest's link is limited."""
    by_key = {(v.receiver, v.sender, v.phase): v for v in run.views}
    checks = []
    pairs: tuple[tuple[Role, Role], ...] = (("kiosk", "specialist"), ("specialist", "kiosk"))
    for receiver, sender in pairs:
        limited = by_key.get((receiver, sender, LIMITED))
        lifted = by_key.get((receiver, sender, LIFTED))
        if limited is None or lifted is None:
            return False
        checks.append(limited.fps_median >= OTHERS_KEEP * lifted.fps_median)
        checks.append(limited.received_kbps >= OTHERS_KEEP * lifted.received_kbps)
    return run.error is None and all(checks)


_COLUMNS = (
    ("fps med", "fps_median", "{:.1f}"),
    ("fps min", "fps_min", "{:.1f}"),
    ("freeze s", "longest_freeze_s", "{:.2f}"),
    (">1 s", "freezes_over_1s", "{:d}"),
    ("loss %", "video_loss_pct", "{:.1f}"),
    ("conceal %", "audio_concealment_pct", "{:.2f}"),
    ("kbit/s", "received_kbps", "{:.0f}"),
    ("1st s", "first_frame_s", "{:.2f}"),
)


def _cell(view: View, attribute: str, form: str) -> str:
    value = getattr(view, attribute)
    return "–" if value is None else form.format(value)


def table(report: MatrixReport) -> str:
    """The matrix as text: one row per profile, path and view, then each profile's targets."""
    lines = [
        f"weaklink matrix {report.date}: {report.duration_s:.0f} s measured per window after "
        f"{report.warmup_s:.0f} s warm-up; load average before {report.load_avg_before}, "
        f"after {report.load_avg_after} ({report.cpus} CPUs)",
    ]
    head = f"{'profile':12}{'path':8}{'received (window)':32}"
    head += "".join(f"{title:>10}" for title, _, _ in _COLUMNS)
    lines += [head, "-" * len(head)]
    repeated = any(result.run > 1 for result in report.results)
    for result in report.results:
        name = f"{result.profile}#{result.run}" if repeated else result.profile
        for run in (result.relay, result.direct):
            if run.error is not None:
                lines.append(f"{name:12}{run.path:8}failed: {run.error}")
            for view in run.views:
                what = f"{view.receiver} <- {view.sender}"
                what += f" ({view.phase})" if view.phase else ""
                row = f"{name:12}{run.path:8}{what:32}"
                row += "".join(f"{_cell(view, a, f):>10}" for _, a, f in _COLUMNS)
                lines.append(row)
    lines += [
        "fps: frames decoded per whole second (median, minimum); freeze s: longest gap between "
        "frames shown; >1 s: freezes over 1 s;",
        "loss: video packets lost; conceal: audio samples concealed; 1st s: from the call's "
        "start to the first picture",
        "",
    ]
    for result in report.results:
        verdicts = "; ".join(
            f"{TARGET_LABELS[target]}: {'met' if met else 'NOT met'}"
            for target, met in result.targets.items()
        )
        lines.append(f"{result.profile} (run {result.run}; {result.summary}): {verdicts}")
    return "\n".join(lines)


def as_json(report: MatrixReport) -> str:
    return json.dumps(asdict(report), indent=1)


def from_json(text: str) -> MatrixReport:
    """A report printed by ``--json``, back (to print its table with ``--table``)."""
    raw = json.loads(text)

    def path_run(run: dict[str, Any]) -> PathRun:
        return PathRun(run["path"], [View(**view) for view in run["views"]], run["error"])

    results = [
        ProfileResult(
            **{**result, "relay": path_run(result["relay"]), "direct": path_run(result["direct"])}
        )
        for result in raw.pop("results")
    ]
    return MatrixReport(**raw, results=results)


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="teleconsult bench weaklink --matrix", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring")
    parser.add_argument(
        "--profiles",
        default="",
        help="comma-separated subset of: " + ", ".join(profile.name for profile in PROFILES),
    )
    parser.add_argument("--runs", type=int, default=1, help="repeat the whole matrix N times")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--table", metavar="FILE", help="print the table of a report saved with --json, run nothing"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= MAX_RUNS:
        parser.error(f"--runs must be within 1..{MAX_RUNS}")
    if not 3.0 <= args.duration <= MAX_DURATION_S:
        parser.error(f"--duration must be within 3..{MAX_DURATION_S:.0f} s")
    if not 0.0 <= args.warmup <= 60.0:
        parser.error("--warmup must be within 0..60 s")
    try:
        args.chosen = pick_profiles(args.profiles)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def main(argv: list[str]) -> int:
    """Entry point for ``teleconsult bench weaklink --matrix``."""
    from benchmarks.browser_call import CHROMIUM
    from benchmarks.matrix_calls import run_matrix

    args = parse(argv)
    if args.table:
        print(table(from_json(Path(args.table).read_text())))
        return 0
    if not CHROMIUM.exists():
        print(f"teleconsult bench weaklink: {CHROMIUM} is not installed", file=sys.stderr)
        return 2
    before = load_average()
    results = asyncio.run(run_matrix(args.chosen, args.runs, args.warmup, args.duration))
    report = MatrixReport(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        duration_s=args.duration,
        warmup_s=args.warmup,
        load_avg_before=before,
        load_avg_after=load_average(),
        cpus=os.cpu_count() or 0,
        results=results,
    )
    print(as_json(report) if args.json else table(report))
    return 0
