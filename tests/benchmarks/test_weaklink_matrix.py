"""``bench weaklink --matrix`` without a browser: its profiles, its verdicts and its output, on
synthetic figures; the freezes a frame log shows."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks.frame_watch import FrameLog, freezes
from benchmarks.link_emulator import LinkEmulator, LinkShape
from benchmarks.matrix_calls import schedule_outage
from benchmarks.weaklink import main as weaklink_main
from benchmarks.weaklink_matrix import (
    LIFTED,
    LIMITED,
    PROFILES,
    MatrixReport,
    PathName,
    PathRun,
    Profile,
    ProfileResult,
    Role,
    View,
    as_json,
    from_json,
    parse,
    pick_profiles,
    table,
    targets,
)

_DELAY = LinkShape(delay_ms=40, queue_ms=None)


def profile(name: str) -> Profile:
    return next(p for p in PROFILES if p.name == name)


def view(
    receiver: Role = "kiosk",
    sender: Role = "specialist",
    phase: str = "",
    fps: float = 20.0,
    freeze_s: float = 0.3,
    over_1s: int = 0,
    kbps: float = 200.0,
    first_s: float | None = 0.9,
) -> View:
    return View(
        receiver=receiver,
        sender=sender,
        phase=phase,
        fps_median=fps,
        fps_min=fps - 2,
        longest_freeze_s=freeze_s,
        freezes_over_1s=over_1s,
        video_loss_pct=1.0,
        audio_concealment_pct=0.5,
        received_kbps=kbps,
        first_frame_s=first_s,
    )


def test_the_profiles_are_the_issues_links() -> None:
    names = [p.name for p in PROFILES]
    assert names == ["baseline", "narrow", "bursty", "outage", "uplink", "guest"]
    base = profile("baseline").downlink
    assert (base.capacity_kbps, base.delay_ms, base.loss, base.queue_ms) == (250, 40, 0.01, 500)
    narrow = profile("narrow").downlink
    assert (narrow.capacity_kbps, narrow.delay_ms, narrow.loss, narrow.queue_ms) == (
        120,
        150,
        0.03,
        300,
    )
    bursty = profile("bursty").downlink
    assert bursty.capacity_kbps == 400 and bursty.burst is not None and bursty.loss == 0
    assert bursty.burst.mean_loss == pytest.approx(0.05)
    assert 1 / bursty.burst.leave_bad >= 3  # bursts of several packets
    assert profile("outage").outage_s == 3.0
    uplink = profile("uplink")
    assert uplink.uplink.capacity_kbps == 200 and uplink.downlink.capacity_kbps is None
    assert (uplink.receiver, uplink.sender, uplink.shaped) == ("specialist", "kiosk", "kiosk")
    guest = profile("guest")
    assert guest.downlink.capacity_kbps == 150 and guest.shaped == "guest"
    for two_party in PROFILES[:4]:
        assert (two_party.receiver, two_party.sender) == ("kiosk", "specialist")
        assert two_party.uplink.capacity_kbps is None


def test_a_subset_of_profiles_keeps_the_matrix_order() -> None:
    assert [p.name for p in pick_profiles("guest, baseline")] == ["baseline", "guest"]
    assert pick_profiles("") == list(PROFILES)
    with pytest.raises(ValueError, match="unknown profile.*nope"):
        pick_profiles("baseline,nope")


def test_options_are_bounded(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse(["--duration", "10", "--profiles", "outage", "--runs", "2"])
    assert (args.duration, args.runs, [p.name for p in args.chosen]) == (10, 2, ["outage"])
    for bad in (["--runs", "0"], ["--runs", "11"], ["--duration", "1"], ["--profiles", "x"]):
        with pytest.raises(SystemExit):
            parse(bad)
    assert "--runs must be" in capsys.readouterr().err


def two_party(relay: View, direct: View) -> dict[str, bool]:
    return targets(profile("baseline"), PathRun("relay", [relay]), PathRun("direct", [direct]))


def test_two_party_targets_hold_when_the_relay_matches_direct() -> None:
    assert two_party(view(), view()) == {
        "relay_fps_median_at_least_direct": True,
        "relay_longest_freeze_within_direct_plus_0_5s": True,
        "relay_freezes_over_1s_at_most_direct": True,
        "first_picture_within_2s_both_paths": True,
    }


@pytest.mark.parametrize(
    ("relay", "direct", "failed"),
    [
        (view(fps=19.9), view(fps=20.0), "relay_fps_median_at_least_direct"),
        (view(freeze_s=0.81), view(freeze_s=0.3), "relay_longest_freeze_within_direct_plus_0_5s"),
        (view(over_1s=2), view(over_1s=1), "relay_freezes_over_1s_at_most_direct"),
        (view(first_s=2.1), view(), "first_picture_within_2s_both_paths"),
        (view(), view(first_s=None), "first_picture_within_2s_both_paths"),
    ],
)
def test_each_two_party_target_fails_on_its_own(relay: View, direct: View, failed: str) -> None:
    verdicts = two_party(relay, direct)
    assert [name for name, met in verdicts.items() if not met] == [failed]


def test_a_failed_run_meets_no_target() -> None:
    verdicts = targets(
        profile("baseline"), PathRun("relay", error="no video"), PathRun("direct", [view()])
    )
    assert not any(verdicts.values())


def guest_run(path: PathName, guest_fps: float, limited_kbps: float, lifted_kbps: float) -> PathRun:
    views = []
    for phase, kbps in ((LIMITED, limited_kbps), (LIFTED, lifted_kbps)):
        views += [
            view("kiosk", "specialist", phase, kbps=kbps, first_s=None),
            view("specialist", "kiosk", phase, kbps=kbps, first_s=None),
            view("guest", "kiosk", phase, fps=guest_fps, kbps=60),
            view("guest", "specialist", phase, fps=guest_fps, kbps=60),
        ]
    return PathRun(path, views)


def test_the_three_party_targets_judge_the_guest_and_the_others() -> None:
    guest = profile("guest")
    direct = guest_run("direct", 6.0, 500, 500)
    met = targets(guest, guest_run("relay", 7.5, 451, 500), direct)
    assert all(met.values()) and len(met) == 6
    slow = targets(guest, guest_run("relay", 6.9, 451, 500), direct)
    assert [name for name, ok in slow.items() if not ok] == ["relay_guest_at_least_7fps"]
    throttled = targets(guest, guest_run("relay", 7.5, 449, 500), direct)
    assert [name for name, ok in throttled.items() if not ok] == [
        "relay_others_keep_90pct_of_fps_and_kbps"
    ]
    full = guest_run("relay", 8, 500, 500)
    no_lifted = PathRun("relay", [v for v in full.views if v.phase == LIMITED])
    assert not targets(guest, no_lifted, direct)["relay_others_keep_90pct_of_fps_and_kbps"]


def report(runs: int = 1) -> MatrixReport:
    results = []
    for run in range(1, runs + 1):
        relay, direct = PathRun("relay", [view(fps=18.5)]), PathRun("direct", [view()])
        results.append(
            ProfileResult(
                "baseline",
                profile("baseline").summary,
                run,
                relay,
                direct,
                targets(profile("baseline"), relay, direct),
            )
        )
    broken = PathRun("relay", error="teleconsult serve exited at start")
    results.append(
        ProfileResult(
            "outage",
            profile("outage").summary,
            runs,
            broken,
            PathRun("direct", [view(first_s=None)]),
            targets(profile("outage"), broken, PathRun("direct", [view()])),
        )
    )
    return MatrixReport(
        date="2026-12-08 00:30 UTC",
        duration_s=60,
        warmup_s=5,
        load_avg_before=[1.0, 1.0, 1.0],
        load_avg_after=[2.0, 1.5, 1.0],
        cpus=2,
        results=results,
    )


def test_the_table_shows_every_row_its_figures_and_the_verdicts() -> None:
    text = table(report())
    lines = text.splitlines()
    assert "60 s measured per window after 5 s warm-up" in lines[0]
    assert "load average before [1.0, 1.0, 1.0], after [2.0, 1.5, 1.0] (2 CPUs)" in lines[0]
    relay_row = next(line for line in lines if line.split()[:2] == ["baseline", "relay"])
    assert relay_row.split()[2:] == [
        "kiosk",
        "<-",
        "specialist",
        "18.5",
        "16.5",
        "0.30",
        "0",
        "1.0",
        "0.50",
        "200",
        "0.90",
    ]
    assert any(line.split()[:4] == ["outage", "relay", "failed:", "teleconsult"] for line in lines)
    assert next(line for line in lines if line.split()[:2] == ["outage", "direct"]).endswith("–")
    verdict = next(line for line in lines if line.startswith("baseline (run 1;"))
    assert "relay fps median >= direct: NOT met" in verdict
    assert "relay longest freeze <= direct + 0.5 s: met" in verdict
    assert "first picture <= 2 s (both paths): met" in verdict
    assert "outage (run 1;" in text and "NOT met" in text.split("outage (run 1;")[1]


def test_repeated_runs_are_told_apart() -> None:
    lines = table(report(runs=2)).splitlines()
    assert any(line.split()[:2] == ["baseline#1", "relay"] for line in lines)
    assert any(line.split()[:2] == ["baseline#2", "relay"] for line in lines)


def test_the_json_holds_the_same_report_and_reads_back() -> None:
    original = report()
    raw = json.loads(as_json(original))
    assert raw["results"][0]["relay"]["views"][0]["fps_median"] == 18.5
    assert raw["results"][0]["targets"]["relay_fps_median_at_least_direct"] is False
    assert raw["results"][1]["relay"]["error"] == "teleconsult serve exited at start"
    assert from_json(as_json(original)) == original


def test_a_saved_report_prints_as_a_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "matrix.json"
    saved.write_text(as_json(report()))
    assert weaklink_main(["--matrix", "--table", str(saved)]) == 0
    assert capsys.readouterr().out.strip() == table(report())


def log(gaps: list[tuple[float, float]], last: float | None, now: float = 100.0) -> FrameLog:
    return FrameLog(installed=0.0, first=1.5, last=last, now=now, frames=500, gaps=gaps)


def test_freezes_are_the_gaps_in_the_window_clipped_to_it() -> None:
    frozen = freezes(log([(5.0, 5.4), (12.0, 13.5), (30.0, 31.2), (40.0, 41.0)], 59.9), 10, 60)
    assert frozen.longest_s == pytest.approx(1.5)
    assert frozen.over_1s == 2  # 1.0 s exactly is not over 1 s; the gap before the window is out
    clipped = freezes(log([(8.0, 11.5)], 59.95), 10, 60)
    assert clipped.longest_s == pytest.approx(1.5) and clipped.over_1s == 1


def test_a_freeze_still_going_at_the_end_counts() -> None:
    frozen = freezes(log([], 57.0), 10, 60)
    assert (frozen.longest_s, frozen.over_1s) == (pytest.approx(3.0), 1)
    never = freezes(log([], None), 10, 60)
    assert (never.longest_s, never.over_1s) == (pytest.approx(50.0), 1)
    smooth = freezes(log([], 59.95), 10, 60)
    assert (smooth.longest_s, smooth.over_1s) == (0.0, 0)


def test_first_frame_time_is_from_the_watcher_start() -> None:
    assert log([], 3.0).first_frame_s == 1.5
    assert replace(log([], None), first=None).first_frame_s is None


def test_views_pair_by_role_and_phase() -> None:
    # The relay's tiles are named after participant ids, the direct path's after roles: the
    # figures carry roles, so a relay view finds its direct counterpart.
    relay = PathRun("relay", [view("guest", "kiosk", LIMITED, fps=8)])
    direct = PathRun("direct", [view("guest", "kiosk", LIMITED, fps=8)])
    verdicts = targets(profile("guest"), relay, direct)
    assert verdicts["relay_fps_median_at_least_direct"]
    assert verdicts["relay_guest_at_least_7fps"]
    assert not verdicts["relay_others_keep_90pct_of_fps_and_kbps"]


async def test_the_outage_falls_in_the_middle_of_the_next_window_both_ways() -> None:
    async with LinkEmulator(downlink=profile("outage").downlink, uplink=_DELAY) as link:
        now = link.downlink.elapsed_s()
        schedule_outage(link, 3.0, 60.0)
        for direction in (link.downlink, link.uplink):
            assert direction.shape.outage is not None
            start, end = direction.shape.outage
            assert end - start == pytest.approx(3.0)
            assert start == pytest.approx(now + 28.5, abs=0.5)
        # The rest of the link stays as the profile has it.
        assert replace(link.downlink.shape, outage=None) == profile("outage").downlink
        assert replace(link.uplink.shape, outage=None) == _DELAY
