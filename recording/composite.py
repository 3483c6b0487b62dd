"""The after-call composite: one side-by-side WebM (VP8 + mixed Opus) of a recording's tracks.

It decodes, composes and encodes, so it is far too heavy for the media path: it runs in its own
process (``python -m recording.composite`` reads a job as JSON on stdin and prints
``progress <percent>`` lines, then ``done <json>``). :func:`run_composite` starts that process
from the event loop and relays progress. Track files are aligned by their ``offset_s`` (when each
track's first frame arrived after the recording started); a video tile holds its last picture
through gaps, and audio gaps are silence. The tracks are decrypted in memory as they are read
and the composite is encrypted as it is written: no plaintext file is ever made.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from recording.files import DecryptingReader, EncryptingWriter
from recording.keys import Keyring

logger = logging.getLogger(__name__)

TILE_WIDTH, TILE_HEIGHT = 320, 240
FPS = 15
SAMPLE_RATE = 48000
AUDIO_FRAME = 960
_PROGRESS_STEP = 5.0


class CompositeError(Exception):
    """The composite job failed (its process exited with an error)."""


@dataclass(frozen=True)
class CompositeInput:
    """One track file of the recording."""

    path: Path
    kind: str
    participant_id: str
    source: str
    offset_s: float


@dataclass
class _VideoSource:
    offset_s: float
    frames: Iterator[av.VideoFrame]
    next_frame: av.VideoFrame | None = None
    picture: np.ndarray | None = None
    started: bool = False

    def picture_at(self, t: float) -> np.ndarray | None:
        """The picture showing at time ``t`` of the composite (held through gaps)."""
        while True:
            if self.next_frame is None and not self.started:
                self.started = True
                self.next_frame = next(self.frames, None)
            frame = self.next_frame
            if frame is None or self.offset_s + float(frame.time or 0.0) > t:
                return self.picture
            self.picture = frame.to_ndarray(width=TILE_WIDTH, height=TILE_HEIGHT, format="rgb24")
            self.next_frame = next(self.frames, None)


@dataclass
class _AudioSource:
    offset_samples: int
    frames: Iterator[av.AudioFrame]
    resampler: av.AudioResampler = field(
        default_factory=lambda: av.AudioResampler(format="fltp", layout="stereo", rate=SAMPLE_RATE)
    )
    buffer: np.ndarray = field(default_factory=lambda: np.zeros((2, 0), dtype=np.float32))
    buffer_start: int = 0
    exhausted: bool = False

    def read(self, start: int, count: int) -> np.ndarray:
        """Samples ``[start, start + count)`` of the composite timeline; silence where none."""
        if self.buffer.shape[1] == 0 and not self.exhausted:
            self.buffer_start = self.offset_samples
        while not self.exhausted and self.buffer_start + self.buffer.shape[1] < start + count:
            frame = next(self.frames, None)
            if frame is None:
                self.exhausted = True
                break
            placed = self.offset_samples + int(round(float(frame.time or 0.0) * SAMPLE_RATE))
            end = self.buffer_start + self.buffer.shape[1]
            parts = [self.buffer]
            if placed > end + AUDIO_FRAME:  # a gap in the track (mute, DTX, loss): silence
                parts.append(np.zeros((2, placed - end), dtype=np.float32))
            parts.extend(out.to_ndarray() for out in self.resampler.resample(frame))
            self.buffer = np.concatenate(parts, axis=1)
        out = np.zeros((2, count), dtype=np.float32)
        lo = max(start, self.buffer_start)
        hi = min(start + count, self.buffer_start + self.buffer.shape[1])
        if hi > lo:
            out[:, lo - start : hi - start] = self.buffer[
                :, lo - self.buffer_start : hi - self.buffer_start
            ]
        drop = max(0, min(self.buffer.shape[1], start + count - self.buffer_start))
        self.buffer = self.buffer[:, drop:]
        self.buffer_start += drop
        return out


def _decoded(container: Any, kind: str) -> Iterator[Any]:
    try:
        stream = container.streams.video[0] if kind == "video" else container.streams.audio[0]
        yield from container.decode(stream)
    except (av.error.FFmpegError, IndexError) as exc:  # a damaged tail: use what decoded
        logger.warning("composite input ends early kind=%s error=%r", kind, exc)


def make_composite(
    inputs: list[CompositeInput],
    output: Path,
    keyring: Keyring,
    duration_s: float,
    progress: Callable[[float], None],
) -> dict[str, Any]:
    """Compose ``inputs`` into ``output`` (sealed with the current key); calls
    ``progress(percent)`` along the way (blocking)."""
    readers: list[Any] = []  # file readers and the containers reading them, closed in reverse
    tiles: dict[tuple[str, str], list[_VideoSource]] = {}
    voices: list[_AudioSource] = []
    try:
        first_in_leftmost = sorted(inputs, key=lambda i: (i.offset_s, i.participant_id, i.source))
        for item in first_in_leftmost:
            reader = DecryptingReader(item.path, keyring)
            readers.append(reader)
            container = av.open(reader, "r")
            readers.append(container)
            if item.kind == "video":
                tiles.setdefault((item.participant_id, item.source), []).append(
                    _VideoSource(item.offset_s, _decoded(container, "video"))
                )
            else:
                voices.append(
                    _AudioSource(int(item.offset_s * SAMPLE_RATE), _decoded(container, "audio"))
                )
        sink = EncryptingWriter(output, keyring)
        readers.insert(0, sink)  # closed last: after the muxer has written its trailer
        return _compose(list(tiles.values()), voices, sink, duration_s, progress)
    finally:
        for handle in reversed(readers):
            handle.close()


def _compose(
    tiles: list[list[_VideoSource]],
    voices: list[_AudioSource],
    output: EncryptingWriter,
    duration_s: float,
    progress: Callable[[float], None],
) -> dict[str, Any]:
    width = TILE_WIDTH * max(1, len(tiles))
    frames = max(1, int(duration_s * FPS))
    with av.open(output, "w", format="webm") as container:
        video = container.add_stream("libvpx", rate=FPS)
        video.width, video.height, video.pix_fmt = width, TILE_HEIGHT, "yuv420p"
        video.bit_rate = 400_000 * max(1, len(tiles))
        video.codec_context.options = {
            "deadline": "realtime",
            "cpu-used": "8",
            "lag-in-frames": "0",
        }
        audio = container.add_stream("libopus", rate=SAMPLE_RATE)
        audio.layout = "stereo"
        audio.format = "s16"
        audio.bit_rate = 64000
        canvas = np.zeros((TILE_HEIGHT, width, 3), dtype=np.uint8)
        samples_done = 0
        reported = -_PROGRESS_STEP
        for index in range(frames):
            t = index / FPS
            for number, sources in enumerate(tiles):
                picture = _tile_picture(sources, t)
                target = canvas[:, number * TILE_WIDTH : (number + 1) * TILE_WIDTH]
                target[:] = picture if picture is not None else 0
            frame = av.VideoFrame.from_ndarray(canvas, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, FPS)
            container.mux(video.encode(frame))
            until = int((index + 1) / FPS * SAMPLE_RATE)
            while samples_done + AUDIO_FRAME <= until:
                container.mux(audio.encode(_mixed(voices, samples_done)))
                samples_done += AUDIO_FRAME
            percent = 100.0 * (index + 1) / frames
            if percent - reported >= _PROGRESS_STEP or index == frames - 1:
                reported = percent
                progress(percent)
        container.mux(video.encode(None))
        container.mux(audio.encode(None))
    return {
        "frames": frames,
        "width": width,
        "height": TILE_HEIGHT,
        "duration_s": frames / FPS,
        "tiles": len(tiles),
        "voices": len(voices),
    }


def _tile_picture(sources: list[_VideoSource], t: float) -> np.ndarray | None:
    current = None
    for source in sources:
        if source.offset_s <= t:
            picture = source.picture_at(t)
            current = picture if picture is not None else current
    return current


def _mixed(voices: list[_AudioSource], start: int) -> av.AudioFrame:
    mix = np.zeros((2, AUDIO_FRAME), dtype=np.float32)
    for voice in voices:
        mix += voice.read(start, AUDIO_FRAME)
    pcm = (np.clip(mix, -1.0, 1.0) * 32767).astype(np.int16)
    frame = av.AudioFrame.from_ndarray(pcm.T.reshape(1, -1), format="s16", layout="stereo")
    frame.sample_rate = SAMPLE_RATE
    frame.pts, frame.time_base = start, Fraction(1, SAMPLE_RATE)
    return frame


# ----- the job as its own process --------------------------------------------------------------


def job_payload(
    inputs: list[CompositeInput], output: Path, keyring: Keyring, duration_s: float
) -> dict[str, Any]:
    """The JSON job handed to the composite process on stdin (keys never go on argv)."""
    return {
        "inputs": [
            {
                "path": str(i.path),
                "kind": i.kind,
                "participant_id": i.participant_id,
                "source": i.source,
                "offset_s": i.offset_s,
            }
            for i in inputs
        ],
        "output": str(output),
        "keys": keyring.to_payload(),
        "duration_s": duration_s,
    }


async def run_composite(
    job: dict[str, Any], on_progress: Callable[[float], Awaitable[None]], label: str
) -> dict[str, Any]:
    """Run one job in a child process; relays progress; cancelling the caller kills the child."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "recording.composite",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert (
            process.stdin is not None and process.stdout is not None and process.stderr is not None
        )
        process.stdin.write(json.dumps(job).encode())
        process.stdin.close()
        errors = asyncio.ensure_future(process.stderr.read())
        result: dict[str, Any] | None = None
        async for raw in process.stdout:
            line = raw.decode().strip()
            if line.startswith("progress "):
                percent = float(line.split()[1])
                logger.info("composite progress %s percent=%.0f", label, percent)
                await on_progress(percent)
            elif line.startswith("done "):
                result = json.loads(line[5:])
        code = await process.wait()
        stderr = (await errors).decode(errors="replace")
        if code != 0 or result is None:
            raise CompositeError(f"composite process exited with {code}: {stderr[-500:]}")
        return result
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def main() -> int:
    """Entry point of the composite process."""
    job = json.loads(sys.stdin.read())
    inputs = [
        CompositeInput(
            Path(i["path"]), i["kind"], i["participant_id"], i["source"], float(i["offset_s"])
        )
        for i in job["inputs"]
    ]
    keyring = Keyring.from_payload(job["keys"])

    def progress(percent: float) -> None:
        print(f"progress {percent:.1f}", flush=True)

    result = make_composite(
        inputs, Path(job["output"]), keyring, float(job["duration_s"]), progress
    )
    print("done " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
