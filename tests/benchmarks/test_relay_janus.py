"""``bench relay --against janus``: the comparison's figures, the skip without Janus, and one
short real run through Janus (skipped where Janus is not installed)."""

from __future__ import annotations

import argparse
import os

import pytest
from aiohttp import ClientSession

from benchmarks import relay_janus
from benchmarks._janus import JanusApi, WebSocketAdapter, connect, host_address, janus_missing
from benchmarks._load import Clip, make_clip
from benchmarks.relay import RunResult, _run_against_janus
from benchmarks.relay_janus import (
    Round,
    comparison_json,
    comparison_table,
    janus_server,
    measure_janus,
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


def test_without_an_address_outside_loopback_janus_is_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(relay_janus, "janus_missing", lambda: None)
    monkeypatch.setattr(relay_janus, "host_address", lambda: None)
    with pytest.raises(relay_janus.JanusUnavailable, match="no IPv4 address outside loopback"):
        relay_janus.janus_address()


JANUS_SKIP = janus_missing() or (
    None if host_address() else "no IPv4 address outside loopback for Janus's ICE"
)
needs_janus = pytest.mark.skipif(JANUS_SKIP is not None, reason=f"Janus: {JANUS_SKIP}")


@needs_janus
async def test_janus_starts_on_its_own_configuration_and_is_stopped_by_pid() -> None:
    address = host_address()
    assert address is not None
    async with ClientSession() as session:
        async with janus_server(session, address) as (pid, url):
            assert url.startswith("ws://127.0.0.1:")
            api = JanusApi(WebSocketAdapter(await connect(session, url)))
            api.start()
            await api.create_session()
            await api.attach()
            await api.close()
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@needs_janus
async def test_two_echoed_streams_run_at_full_rate_through_janus_and_its_cpu_is_split() -> None:
    address = host_address()
    assert address is not None
    figures = await measure_janus(make_clip(), 1, 2.0, address, quiet_s=1.0)
    assert figures.mode == "janus"
    assert figures.video_streams == 2
    assert figures.fps_min >= 20
    assert figures.server_cpu_pct > figures.server_cpu_idle_pct >= 0
    assert figures.cpu_per_video_packet_us is not None and figures.cpu_per_video_packet_us > 0
    assert figures.join_to_first_frame_ms_median is not None
    assert 0 < figures.join_to_first_frame_ms_median < 5000
    assert figures.latency_ms_p50 is not None  # each peer times its own echoed frames
