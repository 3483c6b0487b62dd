"""Load clients for the relay benchmark: pre-encoded publishers and non-decoding receivers.

The clip is made with PyAV at run time (nothing binary is committed): 640x480 VP8 at about
500 kbit/s with a keyframe every 2 s, plus an intra-only copy of every frame so a publisher can
answer a picture-loss request with a keyframe at once, as a browser's encoder does; and a 1 s
Opus tone. Publishers pace packets at real time (30 fps, 50 audio packets/s); receivers count
frames and bytes from RTP without decoding.
"""

from __future__ import annotations

import asyncio
import fractions
import json
import time
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
from aiohttp import ClientSession, ClientWebSocketResponse
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.rtp import RtpPacket

from media.aiortc_adapter import (
    ForwardingPeerConnection,
    ForwardingReceiver,
    codec_data,
    inspection,
    restrict_host_addresses,
)
from media.config import MediaConfig
from media.peer import CodecPreferences

FPS = 30
WIDTH, HEIGHT = 640, 480
CLIP_FRAMES = 4 * FPS
KEYFRAME_EVERY = 2 * FPS
VIDEO_BITRATE = 320_000  # libvpx overshoots on this clip: ~500 kbit/s come out
AUDIO_RATE = 48000
AUDIO_FRAME = 960
KEY_BYTES = 48


@dataclass(frozen=True)
class Clip:
    """Pre-encoded media: ``video[i]`` (GOP of 2 s), ``keyframes[i]`` (intra) and Opus packets."""

    video: list[bytes]
    keyframes: list[bytes]
    audio: list[bytes]

    @property
    def video_kbps(self) -> float:
        return sum(len(p) for p in self.video) * 8 / (len(self.video) / FPS) / 1000


def _pictures() -> list[av.VideoFrame]:
    rng = np.random.default_rng(7)
    texture = rng.integers(0, 255, (HEIGHT * 2, WIDTH * 2, 3), dtype=np.uint8)
    texture = (texture.astype(np.uint16) + np.roll(texture, 1, axis=1)) // 2
    frames = []
    for index in range(CLIP_FRAMES):
        dy, dx = (index * 3) % HEIGHT, (index * 5) % WIDTH
        image = np.ascontiguousarray(texture[dy : dy + HEIGHT, dx : dx + WIDTH].astype(np.uint8))
        frames.append(av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p"))
    return frames


def _encode_video(pictures: list[av.VideoFrame], gop: int) -> list[bytes]:
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    codec.time_base = fractions.Fraction(1, FPS)
    codec.framerate = fractions.Fraction(FPS, 1)
    codec.bit_rate = VIDEO_BITRATE if gop > 1 else VIDEO_BITRATE * 4
    codec.gop_size = gop
    codec.options = {
        "deadline": "good",  # not "realtime": its output would depend on this machine's load
        "cpu-used": "5",
        "lag-in-frames": "0",
        "keyint_min": str(gop),
        "error-resilient": "1",
    }
    packets: list[bytes] = []
    for index, picture in enumerate(pictures):
        picture.pts = index
        picture.time_base = codec.time_base
        packets += [bytes(p) for p in codec.encode(picture)]
    packets += [bytes(p) for p in codec.encode(None)]
    return packets[: len(pictures)]


def _encode_audio() -> list[bytes]:
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = AUDIO_RATE
    codec.layout = "stereo"
    codec.format = "s16"
    codec.bit_rate = 32000
    codec.time_base = fractions.Fraction(1, AUDIO_RATE)
    t = np.arange(AUDIO_RATE) / AUDIO_RATE
    tone = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
    packets: list[bytes] = []
    for start in range(0, AUDIO_RATE, AUDIO_FRAME):
        chunk = np.repeat(tone[start : start + AUDIO_FRAME], 2).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="stereo")
        frame.sample_rate = AUDIO_RATE
        frame.pts = start
        packets += [bytes(p) for p in codec.encode(frame)]
    return packets


def make_clip() -> Clip:
    pictures = _pictures()
    return Clip(
        _encode_video(pictures, KEYFRAME_EVERY), _encode_video(pictures, 1), _encode_audio()
    )


class SendLog:
    """When each video frame left its publisher, keyed by its first bytes."""

    def __init__(self) -> None:
        self.sent_at: dict[bytes, float] = {}

    def record(self, data: bytes) -> None:
        self.sent_at[data[:KEY_BYTES]] = time.perf_counter()


class PacedVideo(MediaStreamTrack):
    """Pre-encoded VP8 at 30 fps; answers a keyframe request at once."""

    kind = "video"

    def __init__(self, clip: Clip, log: SendLog, start_index: int = 0) -> None:
        super().__init__()
        self._clip = clip
        self._log = log
        self._index = start_index - start_index % KEYFRAME_EVERY
        self._sent = 0
        self._start: float | None = None
        self.keyframe_wanted = False
        self.paused = asyncio.Event()
        self.paused.set()

    async def recv(self) -> av.Packet:
        await self.paused.wait()
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        await asyncio.sleep(max(0.0, self._start + self._sent / FPS - loop.time()))
        position = self._index % CLIP_FRAMES
        if self.keyframe_wanted:
            self.keyframe_wanted = False
            data = self._clip.keyframes[position]
        else:
            data = self._clip.video[position]
        packet = av.Packet(data)
        packet.pts = self._sent
        packet.time_base = fractions.Fraction(1, FPS)
        self._index += 1
        self._sent += 1
        self._log.record(data)
        return packet

    def resume_at(self, now: float) -> None:
        """Continue pacing from ``now`` after a pause."""
        self._start = now - self._sent / FPS


class PacedAudio(MediaStreamTrack):
    """Pre-encoded Opus, 50 packets per second; stops for good when ``paused`` is cleared."""

    kind = "audio"

    def __init__(self, clip: Clip) -> None:
        super().__init__()
        self._clip = clip
        self._sent = 0
        self._start: float | None = None
        self.paused = asyncio.Event()
        self.paused.set()

    async def recv(self) -> av.Packet:
        await self.paused.wait()
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        await asyncio.sleep(
            max(0.0, self._start + self._sent * AUDIO_FRAME / AUDIO_RATE - loop.time())
        )
        packet = av.Packet(self._clip.audio[self._sent % len(self._clip.audio)])
        packet.pts = self._sent * AUDIO_FRAME
        packet.time_base = fractions.Fraction(1, AUDIO_RATE)
        self._sent += 1
        return packet


@dataclass
class StreamCounter:
    """One received stream: packets, frames (marker bits) and bytes, first frame time,
    latencies."""

    kind: str
    log: SendLog | None
    receiver: ForwardingReceiver
    packets: int = 0
    frames: int = 0
    octets: int = 0
    first_frame_at: float | None = None
    latencies_ms: list[float] = field(default_factory=list)
    _pending_key: bytes | None = None
    _measuring: bool = False

    def reset_window(self) -> None:
        self.packets = 0
        self.frames = 0
        self.octets = 0
        self.latencies_ms.clear()
        self._measuring = True

    def on_packet(self, packet: RtpPacket) -> None:
        self.packets += 1
        self.octets += len(packet.payload)
        if self.kind == "video" and packet.payload and packet.payload[0] & 0x17 == 0x10:
            codec = self.receiver.codec_for(packet.payload_type)
            frame = codec_data(packet, codec) if codec is not None else None
            self._pending_key = frame[:KEY_BYTES] if frame else None
        if not packet.marker and self.kind == "video":
            return
        now = time.perf_counter()
        self.frames += 1
        if self.first_frame_at is None:
            self.first_frame_at = now
        if self._measuring and self.log is not None and self._pending_key is not None:
            sent = self.log.sent_at.get(self._pending_key)
            if sent is not None and 0 <= now - sent < 1.0:
                self.latencies_ms.append((now - sent) * 1000)
        self._pending_key = None


class LoadPeer:
    """One simulated participant: publishes the clip, counts what it receives."""

    def __init__(self, name: str, clip: Clip, start_index: int, address: str = "127.0.0.1") -> None:
        self.name = name
        self.address = address
        self.log = SendLog()
        self.partner_log: SendLog | None = None
        config = MediaConfig(media_ips=(address,))
        self.pc = ForwardingPeerConnection(
            RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE),
            CodecPreferences(config),
            forward_senders=False,
        )
        self.video = PacedVideo(clip, self.log, start_index)
        self.audio = PacedAudio(clip)
        self.streams: dict[int, StreamCounter] = {}
        self.join_started: float = 0.0
        self.media_began: float = 0.0  # from when media could reach this peer (join time)
        self._lock = asyncio.Lock()

    def publish(self) -> None:
        self.pc.addTrack(self.audio)
        video_sender = self.pc.addTrack(self.video)
        video = self.video

        def keyframe_requested() -> None:
            video.keyframe_wanted = True

        inspection.on_keyframe_request(video_sender, keyframe_requested)

    def count_received(self) -> None:
        for transceiver in self.pc.getTransceivers():
            receiver = transceiver.receiver
            if transceiver.sender.track is not None:
                continue  # one of our own publishing m-lines: the relay sends on others
            if isinstance(receiver, ForwardingReceiver) and id(receiver) not in self.streams:
                counter = StreamCounter(transceiver.kind, self.partner_log, receiver)
                self.streams[id(receiver)] = counter
                receiver.set_sink(counter.on_packet)

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self._restricted(self.pc.createOffer()))
        return str(self.pc.localDescription.sdp)

    async def answer(self, sdp: str) -> str:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        self.count_received()
        await self.pc.setLocalDescription(await self._restricted(self.pc.createAnswer()))
        return str(self.pc.localDescription.sdp)

    async def accept(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        self.count_received()

    async def _restricted(self, description: Any) -> Any:
        result = await description
        restrict_host_addresses(self.pc, (self.address,))
        return result

    async def join_relay(self, session: ClientSession, url: str, consultation: str) -> None:
        """Connect to the relay's signaller and keep answering its offers until closed."""
        self.join_started = time.perf_counter()
        self.publish()
        socket = await session.ws_connect(url)
        self._socket = socket
        await socket.send_json({"consultation": consultation, "participant": self.name})
        async with self._lock:
            await socket.send_json({"type": "offer", "sdp": await self.offer()})
            reply = await socket.receive_json()
            await self.accept(reply["sdp"])
        self._reader = asyncio.create_task(self._serve_offers(socket))

    async def _serve_offers(self, socket: ClientWebSocketResponse) -> None:
        async for message in socket:
            data = json.loads(message.data)
            if data.get("type") == "offer":
                async with self._lock:
                    answer = await self.answer(data["sdp"])
                await socket.send_json({"type": "answer", "sdp": answer})

    async def close(self) -> None:
        reader = getattr(self, "_reader", None)
        socket = getattr(self, "_socket", None)
        if socket is not None:
            await socket.close()
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        await self.pc.close()


async def direct_pair(clip: Clip) -> tuple[LoadPeer, LoadPeer]:
    """A publisher and a subscriber connected peer-to-peer (the latency baseline)."""
    publisher = LoadPeer("p2p-publisher", clip, 0)
    subscriber = LoadPeer("p2p-subscriber", clip, 0)
    subscriber.partner_log = publisher.log
    publisher.publish()
    subscriber.join_started = publisher.join_started = time.perf_counter()
    offer = await publisher.offer()
    answer = await subscriber.answer(offer)
    await publisher.accept(answer)
    return publisher, subscriber


def video_capability_check() -> None:
    """Fail early if this PyAV/aiortc cannot do VP8 (the clip and the relay need it)."""
    names = {c.mimeType for c in RTCRtpSender.getCapabilities("video").codecs}
    if "video/VP8" not in names:
        raise SystemExit("aiortc here has no VP8")
