"""``teleconsult bench record``: the extra server CPU of recording one consultation.

One consultation = two participants, each publishing 640x480 VP8 (~500 kbit/s, 30 fps, keyframe
every 2 s, pre-encoded) and Opus (50 packets/s), packetised like RTP (MTU-sized fragments, marker
on the last). The packets are delivered at real time to the recording tap exactly as the SFU
calls it (``on_rtp(track, packet, payload)``), once through a tap that does nothing (baseline)
and once through :class:`~recording.tap.ConsultationRecorder`; the difference in this process's
CPU time (all threads, including the writer thread, which encrypts as it writes) over the
window is the recording's cost. It also reports how long ``on_rtp`` holds the event loop, the
CPU of verifying the files after the call (decrypt every chunk + sha256) and, unpaced, CPU per
second of media. Bounded: at most
120 s per window, at most 8 consultations.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from aiortc.rtp import RtpPacket

from benchmarks._load import AUDIO_FRAME, AUDIO_RATE, FPS, Clip, make_clip
from media.taps import PacketTap, TrackInfo
from recording.files import describe_stored
from recording.keys import Keyring
from recording.tap import ConsultationRecorder, RecordingResult

MAX_WINDOW_S = 120.0
MAX_CONSULTATIONS = 8
MAX_ROUNDS = 5
MTU_PAYLOAD = 1100
VIDEO_RATE = 90000


@dataclass(frozen=True)
class Delivery:
    at: float
    track: TrackInfo
    packet: RtpPacket
    payload: bytes


@dataclass
class Figures:
    consultations: int
    window_s: float
    rounds: int
    media_kbps_per_consultation: float
    baseline_cpu_pct: float
    recording_cpu_pct: float
    extra_cpu_pct_per_consultation: float
    extra_cpu_pct_per_consultation_rounds: list[float]
    recorder_own_cpu_pct_per_consultation: float
    on_rtp_us_median: float
    on_rtp_us_p99: float
    on_rtp_us_max: float
    unpaced_cpu_ms_per_media_s: float
    verify_cpu_ms_per_media_s: float
    recorded_mb: float
    dropped_frames: int


class NullTap:
    """The baseline: a tap that receives and discards."""

    def on_rtp(self, track: TrackInfo, packet: RtpPacket, payload: bytes) -> None:
        return None

    def on_track_ended(self, track: TrackInfo) -> None:
        return None


def schedule(clip: Clip, consultations: int, seconds: float) -> list[Delivery]:
    """Every packet of ``consultations`` two-party calls over ``seconds``, in time order."""
    deliveries: list[Delivery] = []
    for number in range(consultations):
        for side, participant in enumerate((f"outlet-{number}", f"doctor-{number}")):
            offset = side * 0.007  # the two sides do not send at the same instant
            video = TrackInfo(
                f"{participant}:camera", participant, "video", "camera", "video/VP8", VIDEO_RATE
            )
            audio = TrackInfo(
                f"{participant}:microphone",
                participant,
                "audio",
                "microphone",
                "audio/opus",
                AUDIO_RATE,
            )
            ssrc = 1000 + number * 4 + side * 2
            deliveries += _video_packets(clip, video, ssrc, offset, seconds)
            deliveries += _audio_packets(clip, audio, ssrc + 1, seconds)
    deliveries.sort(key=lambda d: d.at)
    return deliveries


def _video_packets(
    clip: Clip, track: TrackInfo, ssrc: int, offset: float, seconds: float
) -> list[Delivery]:
    out, sequence = [], 0
    for index in range(int(seconds * FPS)):
        data = clip.video[index % len(clip.video)]
        chunks = [data[i : i + MTU_PAYLOAD] for i in range(0, len(data), MTU_PAYLOAD)]
        for number, chunk in enumerate(chunks):
            descriptor = (
                b"\x90\x80" + bytes([index & 0x7F])
                if number == 0
                else b"\x80\x80" + bytes([index & 0x7F])
            )
            packet = RtpPacket(
                payload_type=96,
                marker=number == len(chunks) - 1,
                sequence_number=sequence & 0xFFFF,
                timestamp=(index * VIDEO_RATE // FPS) & 0xFFFFFFFF,
                ssrc=ssrc,
                payload=descriptor + chunk,
            )
            sequence += 1
            out.append(Delivery(offset + index / FPS, track, packet, chunk))
    return out


def _audio_packets(clip: Clip, track: TrackInfo, ssrc: int, seconds: float) -> list[Delivery]:
    out = []
    for index in range(int(seconds * AUDIO_RATE / AUDIO_FRAME)):
        data = clip.audio[index % len(clip.audio)]
        packet = RtpPacket(
            payload_type=111,
            sequence_number=index & 0xFFFF,
            timestamp=index * AUDIO_FRAME,
            ssrc=ssrc,
            payload=data,
        )
        out.append(Delivery(index * AUDIO_FRAME / AUDIO_RATE, track, packet, data))
    return out


async def paced(
    tap: PacketTap, deliveries: list[Delivery], timings: list[float] | None = None
) -> float:
    """Deliver at real time; returns the process CPU seconds (all threads) over the window.

    With ``timings``, each ``on_rtp`` call's event-loop thread CPU time is appended to it.
    """
    loop = asyncio.get_running_loop()
    cpu_start = time.process_time()
    start = loop.time()
    for delivery in deliveries:
        delay = start + delivery.at - loop.time()
        if delay > 0.002:
            await asyncio.sleep(delay)
        if timings is None:
            tap.on_rtp(delivery.track, delivery.packet, delivery.payload)
        else:
            began = time.thread_time()
            tap.on_rtp(delivery.track, delivery.packet, delivery.payload)
            timings.append(time.thread_time() - began)
    return time.process_time() - cpu_start


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def _recorded_round(
    deliveries: list[Delivery],
    consultations: int,
    folder: Path,
    timings: list[float],
    keyring: Keyring,
) -> tuple[float, float, list[RecordingResult]]:
    """One recorded window: process CPU, the recorders' own CPU (loop + writer threads), results."""
    recorders = [
        ConsultationRecorder(f"bench-{n}", f"c-{n}", folder / f"c-{n}", lambda: None, keyring)
        for n in range(consultations)
    ]
    by_participant = {f"outlet-{n}": recorders[n] for n in range(consultations)}
    by_participant.update({f"doctor-{n}": recorders[n] for n in range(consultations)})
    own: list[float] = []
    cpu_before = time.process_time()
    await paced(_RoutingTap(by_participant), deliveries, own)
    results = [await r.stop() for r in recorders]
    process_cpu = time.process_time() - cpu_before  # includes closing the files
    timings.extend(own)
    return process_cpu, sum(own) + sum(r.writer.cpu_s for r in recorders), results


async def measure(consultations: int, seconds: float, rounds: int, folder: Path) -> Figures:
    clip = make_clip()
    keyring = Keyring.of([], secrets.token_bytes(32))
    deliveries = schedule(clip, consultations, seconds)
    media_bytes = sum(len(d.payload) for d in deliveries) / consultations

    baseline, recorded_cpu, own_cpu = [], [], []
    timings: list[float] = []
    results: list[RecordingResult] = []
    for number in range(rounds):  # alternate, so load from other processes hits both alike
        baseline.append(await paced(NullTap(), deliveries))
        process_cpu, own, results = await _recorded_round(
            deliveries, consultations, folder / f"round-{number}", timings, keyring
        )
        recorded_cpu.append(process_cpu)
        own_cpu.append(own)

    verify_start = time.process_time()
    recorded = 0
    for result in results:
        for track in result.tracks:
            recorded += describe_stored(Path(track.path), keyring, folder).size
    verify_cpu = time.process_time() - verify_start

    fast = ConsultationRecorder(  # a queue that holds it all: unpaced, the writer lags behind
        "bench-fast",
        "c-fast",
        folder / "fast",
        lambda: None,
        keyring,
        max_queued_frames=len(deliveries),
    )
    one = [d for d in deliveries if d.track.participant_id.endswith("-0")]
    fast_start = time.process_time()
    for delivery in one:
        fast.on_rtp(delivery.track, delivery.packet, delivery.payload)
    unpaced = await fast.stop()
    unpaced_cpu = time.process_time() - fast_start
    assert unpaced.dropped_frames == 0, "the unpaced run must mux every frame"

    per = 100 / seconds / consultations
    differences = [r - b for r, b in zip(recorded_cpu, baseline, strict=True)]
    return Figures(
        consultations=consultations,
        window_s=seconds,
        rounds=rounds,
        media_kbps_per_consultation=round(media_bytes * 8 / seconds / 1000, 1),
        baseline_cpu_pct=round(100 * statistics.median(baseline) / seconds, 3),
        recording_cpu_pct=round(100 * statistics.median(recorded_cpu) / seconds, 3),
        extra_cpu_pct_per_consultation=round(statistics.median(differences) * per, 3),
        extra_cpu_pct_per_consultation_rounds=[round(d * per, 3) for d in differences],
        recorder_own_cpu_pct_per_consultation=round(statistics.median(own_cpu) * per, 3),
        on_rtp_us_median=round(statistics.median(timings) * 1e6, 1),
        on_rtp_us_p99=round(_percentile(timings, 0.99) * 1e6, 1),
        on_rtp_us_max=round(max(timings) * 1e6, 1),
        unpaced_cpu_ms_per_media_s=round(1000 * unpaced_cpu / seconds, 2),
        verify_cpu_ms_per_media_s=round(1000 * verify_cpu / seconds / consultations, 2),
        recorded_mb=round(recorded / 1e6, 2),
        dropped_frames=sum(r.dropped_frames for r in results),
    )


class _RoutingTap:
    """Hands each packet to its consultation's recorder, as each router's tap list would."""

    def __init__(self, recorders: dict[str, ConsultationRecorder]) -> None:
        self._recorders = recorders

    def on_rtp(self, track: TrackInfo, packet: RtpPacket, payload: bytes) -> None:
        self._recorders[track.participant_id].on_rtp(track, packet, payload)

    def on_track_ended(self, track: TrackInfo) -> None:
        self._recorders[track.participant_id].on_track_ended(track)


def main(argv: list[str]) -> int:
    """Entry point for ``teleconsult bench record``."""
    parser = argparse.ArgumentParser(
        prog="teleconsult bench record", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring window (max 120)")
    parser.add_argument("--consultations", type=int, default=1, help="recorded at once (max 8)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating windows (max 5)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    rounds = min(max(args.rounds, 1), MAX_ROUNDS)
    seconds = min(max(args.seconds, 2.0), MAX_WINDOW_S)
    consultations = min(max(args.consultations, 1), MAX_CONSULTATIONS)
    with tempfile.TemporaryDirectory(prefix="bench-record-") as folder:
        figures = asyncio.run(measure(consultations, seconds, rounds, Path(folder)))
    if args.json:
        print(json.dumps(asdict(figures)))
    else:
        print(
            f"record: {figures.consultations} consultation(s) x 2 participants, VP8 640x480 "
            f"+ Opus, {figures.media_kbps_per_consultation} kbit/s each, {figures.window_s:.0f} s"
        )
        print(
            f"  extra server CPU of recording: {figures.extra_cpu_pct_per_consultation:.3f} % "
            f"of one core per consultation (target <= 1 %), median of "
            f"{figures.extra_cpu_pct_per_consultation_rounds} (process CPU, recorded - baseline)"
        )
        print(
            f"  the recorder's own CPU (on_rtp + writer thread): "
            f"{figures.recorder_own_cpu_pct_per_consultation:.3f} % of one core per consultation"
        )
        print(
            f"  on_rtp on the event loop: median {figures.on_rtp_us_median} us, "
            f"p99 {figures.on_rtp_us_p99} us, max {figures.on_rtp_us_max} us"
        )
        print(
            f"  unpaced muxing + encryption: {figures.unpaced_cpu_ms_per_media_s} ms CPU per "
            f"second of media; verifying after the call (AES-GCM + sha256): "
            f"{figures.verify_cpu_ms_per_media_s} ms per s"
        )
        print(f"  recorded {figures.recorded_mb} MB, dropped frames {figures.dropped_frames}")
    return 0
