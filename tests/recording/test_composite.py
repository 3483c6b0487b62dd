"""The composite job in its own process: side-by-side pictures and mixed audio, aligned in time."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from recording.composite import CompositeInput, job_payload, run_composite
from recording.files import describe_stored
from recording.tap import ConsultationRecorder
from tests.recording.synthetic import (
    KEYRING,
    FakeClock,
    feed_all,
    open_recording,
    participant_media,
)


def spectrum_peaks(path: Path) -> dict[float, float]:
    with open_recording(path) as container:
        chunks = [frame.to_ndarray() for frame in container.decode(audio=0)]
    mono = np.concatenate([c.reshape(-1) if c.shape[0] == 1 else c[0] for c in chunks]).astype(
        np.float64
    )
    spectrum = np.abs(np.fft.rfft(mono * np.hanning(len(mono))))
    freqs = np.fft.rfftfreq(len(mono), 1 / 48000)
    return {
        hz: float(spectrum[np.abs(freqs - hz) < 10].max() / spectrum.mean())
        for hz in (440.0, 880.0, 1500.0)
    }


async def test_composite_shows_both_pictures_and_mixes_both_voices(tmp_path: Path) -> None:
    clock = FakeClock()
    recorder = ConsultationRecorder("r1", "c1", tmp_path / "r1", lambda: None, KEYRING, clock=clock)
    timed = participant_media("outlet", (220, 30, 30), 440.0, 3.0) + participant_media(
        "doctor", (30, 30, 220), 880.0, 2.0, start_at=1.0
    )
    feed_all(recorder, clock, timed)
    result = await recorder.stop()
    inputs = []
    for track in result.tracks:
        inputs.append(
            CompositeInput(
                Path(track.path),
                track.kind,
                track.participant_id,
                track.source,
                track.offset_s,
            )
        )
    assert {round(i.offset_s, 1) for i in inputs} == {0.0, 1.0}
    progress: list[float] = []

    async def on_progress(percent: float) -> None:
        progress.append(percent)

    output = tmp_path / "composite.webm.enc"
    summary = await run_composite(
        job_payload(inputs, output, KEYRING, 3.0), on_progress, "recording=r1"
    )

    assert summary["tiles"] == 2 and summary["voices"] == 2
    assert progress == sorted(progress) and progress[-1] == 100.0 and len(progress) > 3
    assert describe_stored(output, KEYRING, tmp_path).size > 0, "sealed and complete"
    assert b"\x1a\x45\xdf\xa3" not in output.read_bytes(), "the composite is encrypted too"
    with open_recording(output) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("vp8", 640, 240)
        assert math.isclose(float(container.duration or 0) / 1e6, 3.0, rel_tol=0.1)
        pictures = {
            round(float(f.time), 1): f.to_ndarray(format="rgb24") for f in container.decode(video=0)
        }
    early, late = pictures[0.5], pictures[2.5]
    doctor_tile_late = late[60:180, 400:560].reshape(-1, 3).mean(axis=0)
    outlet_tile_late = late[60:180, 80:240].reshape(-1, 3).mean(axis=0)
    assert outlet_tile_late[0] > 150 and outlet_tile_late[2] < 90
    assert doctor_tile_late[2] > 150 and doctor_tile_late[0] < 90
    assert early[60:180, 400:560].mean() < 30, (
        "the doctor's tile is black before the doctor's first frame"
    )
    peaks = spectrum_peaks(output)
    assert peaks[440.0] > 20 * peaks[1500.0] and peaks[880.0] > 20 * peaks[1500.0]


async def test_a_failing_job_reports_an_error(tmp_path: Path) -> None:
    missing = CompositeInput(tmp_path / "nope.webm", "video", "p", "camera", 0.0)

    async def ignore(percent: float) -> None:
        return None

    try:
        await run_composite(
            job_payload([missing], tmp_path / "out.webm.enc", KEYRING, 1.0), ignore, "recording=x"
        )
    except Exception as exc:
        assert "exited with 1" in str(exc)
    else:
        raise AssertionError("a missing input must fail the job")
