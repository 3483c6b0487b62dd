"""The per-track recorder on real VP8/Opus packets: frames, timing, loss, reconnects, crashes."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from media.bitstream import vp8_packet_starts_frame
from recording.files import seal_unfinished
from recording.frames import VideoDepacketizer
from recording.recovery import describe_track_file
from recording.tap import ConsultationRecorder
from recording.timeline import Timeline
from tests.recording.synthetic import (
    KEYRING,
    FakeClock,
    Sent,
    audio_track,
    colour_frames,
    decoded_video,
    mean_rgb,
    open_recording,
    opus_packets,
    tone_frames,
    video_track,
    vp8_packets,
)


def feed(
    recorder: ConsultationRecorder, clock: FakeClock, video: list[Sent], audio: list[Sent]
) -> None:
    vtrack, atrack = video_track(), audio_track()
    merged = sorted(
        [(s.at, 0, s) for s in video] + [(s.at, 1, s) for s in audio], key=lambda x: (x[0], x[1])
    )
    for at, which, sent in merged:
        clock.now = at
        recorder.on_rtp(vtrack if which == 0 else atrack, sent.packet, sent.payload)


def dominant_hz(path: Path) -> float:
    with open_recording(path) as container:
        chunks = [frame.to_ndarray()[0] for frame in container.decode(audio=0)]
    signal_ = np.concatenate(chunks).astype(np.float64)
    layout_channels = 2
    mono = signal_[::layout_channels] if len(chunks[0]) > 960 else signal_
    spectrum = np.abs(np.fft.rfft(mono * np.hanning(len(mono))))
    return float(np.argmax(spectrum[1:]) + 1) * 48000 / len(mono)


async def record(
    tmp_path: Path, video: list[Sent], audio: list[Sent]
) -> tuple[dict[str, dict], list[int]]:
    clock = FakeClock()
    requests: list[int] = []
    recorder = ConsultationRecorder(
        "r1", "c1", tmp_path, lambda: requests.append(1), KEYRING, clock=clock
    )
    feed(recorder, clock, video, audio)
    result = await recorder.stop()
    return {t.kind: t for t in result.tracks}, requests


async def test_records_vp8_and_opus_as_they_were_sent(tmp_path: Path) -> None:
    video = list(vp8_packets(colour_frames((30, 160, 220), 90)))
    audio = list(opus_packets(tone_frames(660.0, 150)))
    tracks, _ = await record(tmp_path, video, audio)

    with open_recording(tracks["video"].path) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "vp8"
        assert (stream.width, stream.height) == (320, 240)
        packets = [p for p in container.demux(stream) if p.pts is not None]
    pts_ms = [int(p.pts * p.time_base * 1000) for p in packets]
    assert pts_ms[0] == 0 and pts_ms == sorted(pts_ms) and len(set(pts_ms)) == len(pts_ms)
    frames = decoded_video(tracks["video"].path)
    assert len(frames) == 90
    assert all(abs(a - b) < 25 for a, b in zip(mean_rgb(frames[45]), (30, 160, 220), strict=True))
    assert math.isclose(tracks["video"].duration_s, 3.0, rel_tol=0.1)

    with open_recording(tracks["audio"].path) as container:
        assert container.streams.audio[0].codec_context.name == "opus"
        assert math.isclose(float(container.duration or 0) / 1e6, 3.0, rel_tol=0.1)
    assert abs(dominant_hz(Path(tracks["audio"].path)) - 660.0) < 15
    assert math.isclose(tracks["audio"].duration_s, 3.0, rel_tol=0.1)


async def test_waits_for_a_keyframe_and_drops_frames_after_a_lost_frame(tmp_path: Path) -> None:
    frames = colour_frames((200, 40, 40), 120, keyframe_every=30)
    video = list(vp8_packets(frames, mtu=60))
    timestamps = sorted(
        {s.packet.timestamp for s in video},
        key=lambda ts: (ts - video[0].packet.timestamp) & 0xFFFFFFFF,
    )
    # the recording starts mid-GOP (frames 0..4 never seen, 5..29 are useless) and frame 45 is lost
    arriving = [s for s in video if s.packet.timestamp not in (*timestamps[:5], timestamps[45])]
    keyframe_60 = [i for i, s in enumerate(arriving) if s.packet.timestamp == timestamps[60]]
    assert len(keyframe_60) > 2
    del arriving[keyframe_60[1]]  # and a middle fragment of the keyframe at 60 never arrives
    tracks, requests = await record(tmp_path, arriving, [])

    decoded = decoded_video(tracks["video"].path)
    # frames 30..44, then 90..119 after the next whole keyframe: nothing refers to a lost frame
    assert len(decoded) == 15 + 30
    assert tracks["video"].frames == 45
    assert requests, "the recorder asks for a keyframe while it waits"
    with open_recording(tracks["video"].path) as container:
        first = next(p for p in container.demux(video=0) if p.pts is not None)
        assert first.pts == 0 and first.is_keyframe
    assert math.isclose(tracks["video"].duration_s, 90 / 30, rel_tol=0.1)  # the gap stays a gap


async def test_reordered_and_duplicated_packets_still_make_whole_frames(tmp_path: Path) -> None:
    video = list(vp8_packets(colour_frames((40, 200, 40), 30), mtu=60))
    shuffled: list[Sent] = []
    for index in range(0, len(video) - 1, 2):
        shuffled += [video[index + 1], video[index], video[index]]
    if len(video) % 2:
        shuffled.append(video[-1])
    tracks, _ = await record(tmp_path, shuffled, [])
    assert len(decoded_video(tracks["video"].path)) == 30


async def test_publisher_reconnect_continues_the_file_with_the_real_pause(tmp_path: Path) -> None:
    first = list(vp8_packets(colour_frames((200, 200, 40), 30), ssrc=1, first_ts=1000))
    second = list(
        vp8_packets(
            colour_frames((40, 40, 200), 30), ssrc=2, first_ts=77_000_000, first_seq=5, start_at=3.0
        )
    )  # 2 s of nothing, then a new stream
    audio = list(opus_packets(tone_frames(440.0, 50)))
    muted = list(opus_packets(tone_frames(440.0, 50), first_ts=123456 + 200 * 960, start_at=4.0))
    tracks, _ = await record(tmp_path, first + second, audio + muted)

    with open_recording(tracks["video"].path) as container:
        pts = [float(p.pts * p.time_base) for p in container.demux(video=0) if p.pts is not None]
    assert pts == sorted(pts)
    gap = max(b - a for a, b in zip(pts, pts[1:], strict=False))
    assert 1.9 < gap < 2.2
    colours = [mean_rgb(f) for f in decoded_video(tracks["video"].path)]
    assert colours[0][0] > 150 and colours[-1][2] > 150
    with open_recording(tracks["audio"].path) as container:
        apts = [float(p.pts * p.time_base) for p in container.demux(audio=0) if p.pts is not None]
    assert apts[0] == 0 and 3.0 < max(b - a for a, b in zip(apts, apts[1:], strict=False)) < 3.1


def test_timeline_is_monotonic_across_wraparound_and_late_packets() -> None:
    timeline = Timeline(90000)
    assert timeline.position_ms(7, 0xFFFFFF00, 0.0) == 0
    assert timeline.position_ms(7, 0xFFFFFF00 + 3000 - (1 << 32), 0.033) == 33
    assert timeline.position_ms(7, 0xFFFFFF00, 0.04) is None
    assert timeline.position_ms(7, 0xFFFFFF00 + 6000 - (1 << 32), 0.066) == 66


def test_assembler_needs_the_first_fragment() -> None:
    video = list(vp8_packets(colour_frames((1, 2, 3), 2)))
    assembler = VideoDepacketizer(vp8_packet_starts_frame)
    first_frame = [s for s in video if s.packet.timestamp == video[0].packet.timestamp]
    for sent in first_frame[1:]:
        frame, _ = assembler.push(sent.packet, sent.payload)
        assert frame is None
    frame, _ = assembler.push(first_frame[0].packet, first_frame[0].payload)
    assert frame is not None and frame.data == b"".join(s.payload for s in first_frame)


_CRASH_SCRIPT = """
import sys, time
from pathlib import Path
from recording.tap import ConsultationRecorder
from tests.recording.synthetic import KEYRING, colour_frames, video_track, vp8_packets
frames = colour_frames((220, 120, 20), 150)
recorder = ConsultationRecorder("crash", "c1", Path(sys.argv[1]), lambda: None, KEYRING)
track = video_track()
start = time.monotonic()
for sent in vp8_packets(frames):
    time.sleep(max(0.0, sent.at - (time.monotonic() - start)))
    recorder.on_rtp(track, sent.packet, sent.payload)
print("fed", flush=True)
time.sleep(60)
"""


def test_a_killed_recorder_leaves_a_playable_file(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    process = subprocess.Popen(
        [sys.executable, "-c", _CRASH_SCRIPT, str(tmp_path)], stdout=subprocess.PIPE, env=env
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == b"fed"
        time.sleep(1.5)  # the last cluster is older than the cluster time limit
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    path = tmp_path / "p1-camera.webm.enc"
    assert b"\x1a\x45\xdf\xa3" not in path.read_bytes(), "no plaintext WebM on disk"
    frames = decoded_video(path, allow_unfinished=True)
    assert len(frames) >= 100, "everything up to the last closed cluster plays"
    assert mean_rgb(frames[-1])[0] > 170
    assert pytest.approx(len(frames) / 30, abs=1.5) == 150 / 30
    assert seal_unfinished(path, KEYRING), "the killed writer left the end unmarked"
    assert len(decoded_video(path)) == len(frames), "once marked, it reads as a complete file"
    described = describe_track_file(path, KEYRING)  # what crash recovery puts in the index
    assert described is not None and described.participant_id == "p1"
    assert described.frames == len(frames) and described.kind == "video"
    assert abs(described.duration_s - (len(frames) - 1) / 30) < 0.1


async def test_a_writer_that_falls_behind_drops_and_counts_rather_than_queueing(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    requests: list[int] = []
    recorder = ConsultationRecorder(
        "r1", "c1", tmp_path, lambda: requests.append(1), KEYRING, max_queued_frames=4, clock=clock
    )
    video = list(vp8_packets(colour_frames((200, 200, 200), 90, keyframe_every=15)))
    audio = list(opus_packets(tone_frames(440.0, 150)))
    feed(recorder, clock, video, audio)
    result = await recorder.stop()

    assert result.queue_drops > 0 and result.dropped_frames >= result.queue_drops
    assert requests, "video waits for a keyframe after a dropped frame"
    tracks = {t.kind: t for t in result.tracks}
    with open_recording(tracks["video"].path) as container:
        packets = [p for p in container.demux(video=0) if p.size]
        decoded = [f for p in packets for f in p.decode()]
    assert packets[0].is_keyframe and len(decoded) == len(packets) == tracks["video"].frames < 90
    for before, after in zip(packets, packets[1:], strict=False):
        if float((after.pts - before.pts) * after.time_base) > 0.04:  # frames were dropped here
            assert after.is_keyframe, "after a drop the file resumes only at a keyframe"


async def test_records_h264_into_matroska_without_transcoding(tmp_path: Path) -> None:
    from media.bitstream import annexb_nal_units
    from media.taps import TrackInfo
    from tests.recording.synthetic import h264_frames, h264_packets

    def length_prefixed_units(data: bytes) -> list[bytes]:
        units, at = [], 0
        while at < len(data):
            size = int.from_bytes(data[at : at + 4], "big")
            units.append(data[at + 4 : at + 4 + size])
            at += 4 + size
        return units

    sent = h264_frames((250, 200, 20), 60)
    track = TrackInfo("p1:camera", "p1", "video", "camera", "video/H264", 90000)
    clock = FakeClock()
    recorder = ConsultationRecorder("r1", "c1", tmp_path, lambda: None, KEYRING, clock=clock)
    for item in h264_packets(sent):
        clock.now = item.at
        recorder.on_rtp(track, item.packet, item.payload)
    (result,) = (await recorder.stop()).tracks
    assert result.path.name.endswith(".mkv.enc")
    with open_recording(result.path) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and (stream.width, stream.height) == (320, 240)
        written = [bytes(p) for p in container.demux(stream) if p.size]
    # Matroska stores NAL units length-prefixed instead of with start codes; the units are unchanged
    assert [length_prefixed_units(w) for w in written] == [annexb_nal_units(s) for s in sent]
    frames = decoded_video(result.path)
    assert len(frames) == 60 and mean_rgb(frames[30])[0] > 200
