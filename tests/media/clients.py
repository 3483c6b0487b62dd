"""Real aiortc client peers for media tests: each publishes a solid colour and a pure tone."""

from __future__ import annotations

import asyncio
import fractions
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import AnyRtcpPacket
from aiortc.sdp import SessionDescription

from media.aiortc_adapter import inspection, restrict_host_addresses
from media.aiortc_adapter.remb import read_remb
from media.stats import ParticipantStats
from tests.media.repair import LossRepair

VIDEO_RATE = 90000
FPS = 30
AUDIO_RATE = 48000
AUDIO_SAMPLES = 960


class ColourTrack(MediaStreamTrack):
    """Solid-colour 320x240 video at 30 fps (or ``fps``)."""

    kind = "video"

    def __init__(self, rgb: tuple[int, int, int], fps: int = FPS) -> None:
        super().__init__()
        self.rgb = rgb
        self.fps = fps
        self._image = np.full((240, 320, 3), rgb, dtype=np.uint8)
        self._frames = 0
        self._start: float | None = None

    async def recv(self) -> av.VideoFrame:
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        due = self._start + self._frames / self.fps
        await asyncio.sleep(max(0.0, due - loop.time()))
        frame = av.VideoFrame.from_ndarray(self._image, format="rgb24")
        frame.pts = self._frames * VIDEO_RATE // self.fps
        frame.time_base = fractions.Fraction(1, VIDEO_RATE)
        self._frames += 1
        return frame


class BusyTrack(ColourTrack):
    """The colour with fresh noise on every frame: the encoder uses all the bitrate it is given."""

    def __init__(self, rgb: tuple[int, int, int], fps: int = 15, seed: int = 0) -> None:
        super().__init__(rgb, fps)
        self._rng = np.random.default_rng(seed)
        self._base = self._image.astype(np.int16)

    async def recv(self) -> av.VideoFrame:
        noise = self._rng.integers(-40, 41, size=self._base.shape, dtype=np.int16)
        self._image = np.clip(self._base + noise, 0, 255).astype(np.uint8)
        return await super().recv()


class ToneTrack(MediaStreamTrack):
    """A pure sine tone, 20 ms mono frames."""

    kind = "audio"

    def __init__(self, hz: float) -> None:
        super().__init__()
        self.hz = hz
        self._sent = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        due = self._start + self._sent / AUDIO_RATE
        await asyncio.sleep(max(0.0, due - loop.time()))
        t = (np.arange(AUDIO_SAMPLES) + self._sent) / AUDIO_RATE
        samples = (np.sin(2 * math.pi * self.hz * t) * 12000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = self._sent
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        self._sent += AUDIO_SAMPLES
        return frame


def dominant_hz(frames: list[av.AudioFrame]) -> float:
    """The strongest frequency of decoded audio (first channel)."""
    chunks = []
    for frame in frames:
        data = frame.to_ndarray()
        channels = len(frame.layout.channels)
        chunks.append(data.reshape(-1)[::channels] if data.shape[0] == 1 else data[0])
    signal = np.concatenate(chunks).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    rate = frames[0].sample_rate
    return float(np.argmax(spectrum[1:]) + 1) * rate / len(signal)


def strip_codec(sdp: str, codec_name: str) -> str:
    """Remove a codec (and its RTX) from an SDP, as a client that does not support it would."""
    lines = sdp.splitlines()
    removed = {
        line.split()[0].split(":")[1]
        for line in lines
        if line.startswith("a=rtpmap:")
        and line.split()[1].split("/")[0].lower() == codec_name.lower()
    }
    removed |= {
        line.split()[0].split(":")[1]
        for line in lines
        if line.startswith("a=fmtp:")
        and any(f"apt={pt}" == p for pt in removed for p in line.split()[1].split(";"))
    }
    kept = []
    for line in lines:
        if line.startswith("m="):
            parts = line.split()
            line = " ".join(parts[:3] + [pt for pt in parts[3:] if pt not in removed])
        elif line.startswith(("a=rtpmap:", "a=fmtp:", "a=rtcp-fb:")):
            if line.split()[0].split(":")[1] in removed:
                continue
        kept.append(line)
    return "\r\n".join(kept) + "\r\n"


def renumber_sdp(
    sdp: str, payload_types: Mapping[str, Mapping[int, int]], extension_ids: Mapping[str, int]
) -> str:
    """Give an SDP other payload types (per kind, RTX ``apt`` included) and extension ids.

    Turns an aiortc offer into one numbered the way a browser numbers its first offer.
    """
    description = SessionDescription.parse(sdp)
    for media in description.media:
        mapping = payload_types.get(media.kind, {})
        media.fmt = [mapping.get(pt, pt) for pt in media.fmt]
        for codec in media.rtp.codecs:
            if codec.payloadType is not None:
                codec.payloadType = mapping.get(codec.payloadType, codec.payloadType)
            apt = codec.parameters.get("apt")
            if isinstance(apt, int):
                codec.parameters["apt"] = mapping.get(apt, apt)
        for extension in media.rtp.headerExtensions:
            extension.id = extension_ids.get(extension.uri, extension.id)
    return str(description)


def close_to(
    actual: tuple[int, int, int], expected: tuple[int, int, int], tolerance: int = 45
) -> bool:
    """Whether a mean colour matches what was sent, allowing for VP8's lossy coding."""
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def mean_rgb(frame: av.VideoFrame) -> tuple[int, int, int]:
    array = frame.to_ndarray(format="rgb24")
    h, w, _ = array.shape
    centre = array[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]
    r, g, b = (int(v) for v in centre.reshape(-1, 3).mean(axis=0))
    return r, g, b


@dataclass
class Received:
    """What a client got on one remote track."""

    track: MediaStreamTrack
    frames: list[Any] = field(default_factory=list)
    first_at: float | None = None
    count: int = 0


class ClientPeer:
    """A participant's browser stand-in: publishes colour + tone, decodes everything it receives."""

    def __init__(
        self,
        participant_id: str,
        rgb: tuple[int, int, int] = (200, 30, 30),
        hz: float = 440.0,
        audio: bool = True,
        video: bool = True,
        keep_frames: int = 30,
        publish_codec: str | None = None,
        refuse_codec: str | None = None,
        munge_offer: Callable[[str], str] | None = None,
        ice_servers: list[RTCIceServer] | None = None,
        relay_only: bool = False,
        busy_video: bool = False,
        sdp_to_server: Callable[[str], str] | None = None,
        sdp_from_server: Callable[[str], str] | None = None,
    ) -> None:
        self.participant_id = participant_id
        self.rgb = rgb
        self.hz = hz
        self.relay_only = relay_only
        self.pc = RTCPeerConnection(
            RTCConfiguration(
                iceServers=ice_servers,
                bundlePolicy=RTCBundlePolicy.MAX_BUNDLE,
                iceTransportPolicy=(
                    RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL
                ),
            )
        )
        colour = BusyTrack(rgb) if busy_video else ColourTrack(rgb)
        self.video = colour if video else None
        self.audio = ToneTrack(hz) if audio else None
        self.received: dict[str, Received] = {}
        self.tracks_events: list[list[dict[str, Any]]] = []
        self.stats_events: list[list[ParticipantStats]] = []
        self.answer_to: Callable[[str], Awaitable[None]] | None = None
        self._keep = keep_frames
        self._tasks: set[asyncio.Task[Any]] = set()
        self._negotiation = asyncio.Lock()
        self._refuse_codec = refuse_codec
        self._munge_offer = munge_offer
        self.server_offers: list[str] = []
        self.server_answers: list[str] = []
        self.rembs: list[tuple[float, int]] = []
        self._to_server = sdp_to_server or (lambda sdp: sdp)
        self._from_server = sdp_from_server or (lambda sdp: sdp)
        for track in (self.audio, self.video):
            if track is not None:
                self.pc.addTrack(track)
        if publish_codec is not None:
            for transceiver in self.pc.getTransceivers():
                if transceiver.kind == "video":
                    transceiver.setCodecPreferences(
                        [
                            c
                            for c in RTCRtpSender.getCapabilities("video").codecs
                            if c.mimeType.lower() in (publish_codec.lower(), "video/rtx")
                        ]
                    )
        self.pc.on("track", self._on_track)
        for sender in self.pc.getSenders():
            if sender.kind == "video":
                self._record_rembs(sender)

    def _record_rembs(self, sender: RTCRtpSender) -> None:
        """Keep every REMB this sender gets (time, bit/s); aiortc still applies it."""
        ssrc = inspection.sender_ssrc(sender)

        def recording(packet: AnyRtcpPacket) -> None:
            remb = read_remb(packet)
            if remb is not None and ssrc in remb[1]:
                self.rembs.append((asyncio.get_running_loop().time(), remb[0]))

        inspection.observe_rtcp(sender, recording)

    def _on_track(self, track: MediaStreamTrack) -> None:
        received = Received(track)
        self.received[track.id] = received
        self._spawn(self._consume(received))
        if track.kind == "video":
            receiver = next(r for r in self.pc.getReceivers() if r.track is track)
            self._spawn(LossRepair(receiver, lambda: received.count).run())

    async def _consume(self, received: Received) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                frame = await received.track.recv()
            except MediaStreamError:
                return
            if received.first_at is None:
                received.first_at = loop.time()
            received.frames.append(frame)
            received.count += 1
            del received.frames[: -self._keep]

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def negotiate(self, exchange: Callable[[str], Awaitable[str]]) -> None:
        """Offer, let ``exchange`` deliver it and return the answer, apply the answer.

        Server offers wait meanwhile, as in a browser where the ack arrives before the next event.
        """
        async with self._negotiation:
            offer = await self.pc.createOffer()
            if self._munge_offer is not None:
                # aiortc sends with what the answer echoes, so only the SDP needs renumbering.
                offer = RTCSessionDescription(sdp=self._munge_offer(offer.sdp), type="offer")
            self._restrict_gathering()
            await self.pc.setLocalDescription(offer)
            answer = await exchange(self._to_server(self.pc.localDescription.sdp))
            self.server_answers.append(answer)
            answer = self._from_server(answer)
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    async def answer_offer(self, sdp: str) -> str:
        if self._refuse_codec is not None:
            sdp = strip_codec(sdp, self._refuse_codec)
        async with self._negotiation:
            offer = RTCSessionDescription(sdp=self._from_server(sdp), type="offer")
            await self.pc.setRemoteDescription(offer)
            answer = await self.pc.createAnswer()
            self._restrict_gathering()
            await self.pc.setLocalDescription(answer)
            return self._to_server(self.pc.localDescription.sdp)

    def _restrict_gathering(self) -> None:
        """Host candidates on 127.0.0.1 only; a relay-only peer gathers TURN candidates alone."""
        if not self.relay_only:
            restrict_host_addresses(self.pc, ("127.0.0.1",))

    def on_server_offer(self, sdp: str) -> None:
        """Answer a server offer in the background (as a browser's event handler would)."""
        self.server_offers.append(sdp)

        async def respond() -> None:
            if self.pc.signalingState == "closed":
                return
            answer = await self.answer_offer(sdp)
            assert self.answer_to is not None
            await self.answer_to(answer)

        self._spawn(respond())

    def by_participant(self, participant_id: str, kind: str) -> Received | None:
        """The received track labelled as coming from ``participant_id`` (via ``rtc.tracks``)."""
        for received in self.received.values():
            if received.track.kind == kind and received.track.id.startswith(f"{participant_id}:"):
                return received
        return None

    async def wait_for(
        self, participant_id: str, kind: str, frames: int = 5, within_s: float = 15.0
    ) -> Received:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while loop.time() < deadline:
            received = self.by_participant(participant_id, kind)
            if received is not None and len(received.frames) >= frames:
                return received
            await asyncio.sleep(0.05)
        raise AssertionError(
            f"{self.participant_id} got no {kind} from {participant_id} within {within_s}s: "
            f"{[(r.track.id, len(r.frames)) for r in self.received.values()]}"
        )

    async def close(self) -> None:
        await self.pc.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def assert_see_and_hear_each_other(first: ClientPeer, second: ClientPeer) -> None:
    """Each peer decodes the other's colour and tone."""
    for viewer, publisher in ((second, first), (first, second)):
        seen = await viewer.wait_for(publisher.participant_id, "video")
        assert close_to(mean_rgb(seen.frames[-1]), publisher.rgb)
        heard = await viewer.wait_for(publisher.participant_id, "audio", frames=25)
        assert abs(dominant_hz(heard.frames[-20:]) - publisher.hz) < 30
