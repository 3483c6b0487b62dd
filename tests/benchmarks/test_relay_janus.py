"""``bench relay --against janus``: the comparison's figures, the skip without Janus or without a
private network namespace, the namespaced child's command and output, and one short real run
through Janus in its namespace (skipped where either is missing)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from benchmarks import _netns, relay_janus
from benchmarks._janus import janus_missing
from benchmarks._load import Clip, make_clip
from benchmarks.relay import RunResult, _run_against_janus
from benchmarks.relay_janus import (
    Round,
    child_command,
    comparison_json,
    comparison_table,
    measure_janus,
    parse_run,
    summary,
    video_ratio,
)

NO_CLIP = Clip(video=[b"\x00" * 2000] * 30, keyframes=[], audio=[])


def result(mode: str, video_pct: float, join_ms: float | None = 100.0) -> RunResult:
    return RunResult(
        mode=mode,
        consultations=2,
        video_streams=4,
        audio_streams=4,
        window_s=5.0,
        server_cpu_pct=4.0,
        server_cpu_audio_only_pct=2.0,
        server_cpu_idle_pct=1.0,
        cpu_per_video_stream_pct=video_pct,
        cpu_per_audio_stream_pct=0.25,
        cpu_fixed_per_consultation_pct=0.5,
        cpu_per_stream_pair_pct=1.0,
        cpu_per_stream_pair_at_30fps_pct=1.0,
        cpu_per_video_packet_us=50.0,
        cpu_per_audio_packet_us=None,
        fps_min=30.0,
        fps_median=30.0,
        video_kbps_median=500.0,
        join_to_first_frame_ms_median=join_ms,
        join_to_first_frame_ms_max=join_ms,
        latency_ms_p50=None,
        latency_ms_p95=None,
        p2p_latency_ms_p50=None,
        p2p_latency_ms_p95=None,
        added_latency_ms_p50=None,
        added_latency_ms_p95=None,
        server_rss_mb=50.0,
        load_cpu_pct=30.0,
    )


def test_figures_are_medians_over_rounds_and_the_ratio_is_project_over_janus() -> None:
    rounds = [
        Round(result("forward", 0.6), result("janus", 0.2), (0.5, 0.6)),
        Round(result("forward", 0.3), result("janus", 0.1, None), (1.5, 1.4)),
        Round(result("forward", 0.5), result("janus", 0.25, 300.0), (0.9, 1.0)),
    ]
    assert summary([r.project for r in rounds])["cpu_per_video_stream_pct"] == 0.5
    assert summary([r.janus for r in rounds])["join_to_first_frame_ms_median"] == 200.0
    assert [video_ratio(r.project, r.janus) for r in rounds] == [3.0, 3.0, 2.0]
    assert video_ratio(result("forward", 0.5), result("janus", 0.0)) is None
    figures = comparison_json(rounds, NO_CLIP)
    assert figures["video_cpu_ratio_median"] == 3.0
    assert figures["rounds"][1]["load_before"] == [1.5, 1.4]
    table = comparison_table(rounds, NO_CLIP)
    assert "CPU per video stream, project / Janus: 3.0x (rounds: 3, 3, 2)" in table
    assert "round 2: load average 1.50 / 1.40" in table
    assert "50 / -" in table  # a figure one server lacks is shown as "-"


async def test_without_janus_the_command_says_skipped_and_succeeds(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(relay_janus, "janus_missing", lambda: "/usr/bin/janus not found")

    def never() -> Clip:
        raise AssertionError("nothing is prepared or measured without Janus")

    monkeypatch.setattr("benchmarks.relay.make_clip", never)
    args = argparse.Namespace(consultations=2, duration=5.0, rounds=1, json=False)
    assert await _run_against_janus(args) == 0
    assert capsys.readouterr().out == "skipped: /usr/bin/janus not found\n"


async def test_without_a_private_network_namespace_the_command_says_skipped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(relay_janus, "janus_missing", lambda: None)
    monkeypatch.setattr(_netns, "namespace_missing", lambda: "unshare not found")

    def never() -> Clip:
        raise AssertionError("nothing is prepared or measured without a namespace")

    monkeypatch.setattr("benchmarks.relay.make_clip", never)
    args = argparse.Namespace(consultations=2, duration=5.0, rounds=1, json=False)
    assert await _run_against_janus(args) == 0
    assert capsys.readouterr().out == "skipped: unshare not found\n"


def test_the_child_runs_this_module_in_a_new_network_namespace(tmp_path: Path) -> None:
    command = child_command(tmp_path / "clip.pickle", 3, 20.0, 10.0, "net:[4026531840]")
    assert command[:4] == ["unshare", "--net", "--", sys.executable]
    assert command[4:6] == ["-m", "benchmarks.relay_janus"]
    options = dict(zip(command[6::2], command[7::2], strict=True))
    assert options == {
        "--clip": str(tmp_path / "clip.pickle"),
        "--consultations": "3",
        "--window": "20.0",
        "--quiet": "10.0",
        "--host-namespace": "net:[4026531840]",
    }


def test_the_childs_last_line_is_its_figures_and_janus_pid() -> None:
    figures = result("janus", 0.2)
    output = b"a log line\n" + json.dumps({"janus_pid": 41, "result": asdict(figures)}).encode()
    run = parse_run(output + b"\n")
    assert run.janus_pid == 41
    assert run.result == figures


JANUS_SKIP = janus_missing() or _netns.namespace_missing()
needs_janus = pytest.mark.skipif(JANUS_SKIP is not None, reason=f"Janus: {JANUS_SKIP}")


@needs_janus
async def test_two_streams_echo_at_full_rate_through_janus_in_its_namespace() -> None:
    run = await measure_janus(make_clip(), 1, 2.0, quiet_s=1.0)
    with pytest.raises(ProcessLookupError):  # Janus was stopped by its PID
        os.kill(run.janus_pid, 0)
    figures = run.result
    assert figures.mode == "janus"
    assert figures.video_streams == 2
    assert figures.fps_min >= 20
    assert figures.server_cpu_pct > figures.server_cpu_idle_pct >= 0
    # Over 2 s Janus's CPU is a few 10 ms ticks, too few to split reliably by kind; the packets
    # were counted (a figure, not None), and its CPU came from Janus's own /proc entry.
    assert figures.cpu_per_video_packet_us is not None and figures.cpu_per_video_packet_us >= 0
    assert figures.join_to_first_frame_ms_median is not None
    assert 0 < figures.join_to_first_frame_ms_median < 5000
    assert figures.latency_ms_p50 is not None  # each peer times its own echoed frames
