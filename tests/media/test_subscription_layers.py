"""A layered VP8 track through ``PublishedTrack`` and ``Subscription`` to a subscriber's sender,
with stand-ins for aiortc's receiver, sender and transceiver (no peers): which packets go, the
numbers and descriptors they carry, that a layer switch asks for no keyframe, and what the
control step chooses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket

from media.aiortc_adapter import ForwardingReceiver, ForwardingSender
from media.config import MediaConfig
from media.downlink import SubscriberLink
from media.metrics import MediaMetrics
from media.rtp_numbers import seq_diff
from media.subscription import PublishedTrack, RouteContext, Subscription
from media.taps import TrackInfo
from media.vp8_descriptor import parse_vp8_descriptor
from tests.media.vp8_packets import Packet, l1t3_stream

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90_000, payloadType=96)


@dataclass
class FakeReceiver:
    """What ``PublishedTrack`` uses of a ``ForwardingReceiver``."""

    sink: Any = None
    keyframe_requests: int = 0
    media_ssrc: int | None = 1234

    def set_sink(self, sink: Any) -> None:
        self.sink = sink

    def codec_for(self, payload_type: int) -> RTCRtpCodecParameters | None:
        return VP8 if payload_type == 96 else None

    async def request_keyframe(self) -> bool:
        self.keyframe_requests += 1
        return True


@dataclass
class FakeSender:
    """What ``Subscription`` uses of a ``ForwardingSender``: sent packets, rebuilt as bytes."""

    codec: RTCRtpCodecParameters | None = field(default_factory=lambda: VP8)
    sent: list[tuple[int, int, bytes]] = field(default_factory=list)

    def on_keyframe_request(self, callback: Any) -> None: ...

    def on_start(self, callback: Any) -> None: ...

    def set_feedback(self, feedback: Any) -> None: ...

    def send_forwarded(
        self,
        source: RtpPacket,
        payload_type: int,
        sequence: int,
        timestamp: int,
        payload_head: bytes = b"",
    ) -> None:
        payload = payload_head + source.payload[len(payload_head) :]
        self.sent.append((sequence, timestamp, payload))


class FakeTransceiver:
    mid = "1"


class Harness:
    def __init__(self) -> None:
        config = MediaConfig()
        self.context = RouteContext("c-1", config, MediaMetrics(), (), self._spawn)
        self.receiver = FakeReceiver()
        info = TrackInfo("pub:camera", "pub", "video", "camera", "video/VP8", 90_000)
        self.track = PublishedTrack(
            self.context, info, "0", cast(ForwardingReceiver, self.receiver)
        )
        self.sender = FakeSender()
        self.link = SubscriberLink(config.congestion, self.context.metrics, 1.0)
        self.subscription = Subscription(
            self.context,
            "sub",
            "pub:camera",
            "video",
            cast(ForwardingSender, self.sender),
            cast(Any, FakeTransceiver()),
            self.link,
        )
        self.subscription.attach(self.track)

    def _spawn(self, job: Any) -> None:
        job.close()  # the fake receiver's keyframe request: counted, nothing to run
        self.receiver.keyframe_requests += 1

    def publish(self, packets: list[Packet]) -> None:
        for p in packets:
            packet = RtpPacket(96, p.marker, p.sequence, p.timestamp, 1234, p.payload)
            self.track._on_packet(packet)


async def test_a_track_without_layers_passes_as_before() -> None:
    harness = Harness()
    packets = [
        Packet(p.sequence, p.timestamp, p.marker, p.picture, 0, _plain(p.payload))
        for p in l1t3_stream(16)
    ]
    harness.publish(packets)
    assert [payload for _, _, payload in harness.sender.sent] == [p.payload for p in packets]
    assert harness.track.layer_rates.top_layer is None
    assert harness.subscription.forwarded_layer is None


def _plain(payload: bytes) -> bytes:
    """The same packet with a picture id only (no TL0PICIDX, no TID), as without layers."""
    descriptor = parse_vp8_descriptor(payload)
    assert descriptor is not None and descriptor.picture_id is not None
    head = bytes(
        (payload[0], 0x80, 0x80 | (descriptor.picture_id >> 8), descriptor.picture_id & 0xFF)
    )
    return head + payload[descriptor.size :]


async def test_layers_switch_down_and_up_with_contiguous_numbers_and_no_keyframe() -> None:
    harness = Harness()
    stream = l1t3_stream(96)
    rates = harness.track.layer_rates
    rates.sample(0.0)
    harness.publish(stream[:16])
    rates.sample(0.5)
    assert rates.top_layer == 2
    asked = harness.receiver.keyframe_requests
    harness.subscription.select_layer(0.1, 1.0)  # a share below every layer's rate: TL0
    harness.publish(stream[16:96])
    assert harness.subscription.forwarded_layer == 0
    down = len(harness.sender.sent)
    for at in (2.0, 2.0 + harness.context.config.congestion.layer_up_hold_s):
        harness.subscription.select_layer(10_000.0, at)  # room for every layer, held
    harness.publish(stream[96:])
    assert harness.subscription.forwarded_layer == 2
    assert harness.receiver.keyframe_requests == asked
    sent = harness.sender.sent
    assert all(seq_diff(b[0], a[0]) == 1 for a, b in zip(sent, sent[1:], strict=False))
    descriptors = [parse_vp8_descriptor(payload) for _, _, payload in sent]
    layers = [d.temporal_id for d in descriptors if d is not None]
    assert set(layers[16:down]) == {0}  # TL0 only: every fourth picture
    assert set(layers[down:]) == {0, 1, 2}
    pictures = [d.picture_id for d in descriptors[::2] if d is not None]
    assert pictures == [(pictures[0] + i) % (1 << 15) for i in range(len(pictures))]
    timestamps = sorted({ts for _, ts, _ in sent[16:down]})
    assert {b - a for a, b in zip(timestamps, timestamps[1:], strict=False)} == {12_000}


async def test_every_layer_goes_while_the_link_is_not_budgeted() -> None:
    harness = Harness()
    stream = l1t3_stream(32)
    harness.track.layer_rates.sample(0.0)
    harness.publish(stream[:16])
    harness.track.layer_rates.sample(0.5)
    harness.subscription.select_layer(None, 0.5)
    harness.publish(stream[16:])
    assert [payload for _, _, payload in harness.sender.sent] == [p.payload for p in stream]
    assert harness.subscription.forwarded_layer == 2


async def test_keyframes_are_left_out_of_the_layer_rates() -> None:
    """A keyframe asked for by a joining subscriber does not make the layers look dearer."""
    harness = Harness()
    rates = harness.track.layer_rates
    plain = l1t3_stream(8, keyframe_at=())
    with_keyframes = l1t3_stream(8, sequence=2_000, timestamp=900_000, keyframe_at=(0, 4))
    measured = []
    for stream, start in ((plain, 0.0), (with_keyframes, 1.0)):
        rates.sample(start)
        harness.publish(stream)
        rates.sample(start + 0.5)
        measured.append(rates.cumulative_kbps(0))
    # the base layer's pictures 0 and 4 were keyframes: nothing of it counted, the rate decays
    assert measured[1] < measured[0]
    assert rates.cumulative_kbps(2) - rates.cumulative_kbps(0) > 0  # the other layers counted


async def test_a_packet_without_descriptor_goes_only_while_numbers_follow_the_publisher() -> None:
    """Padding (an empty VP8 payload) keeps its place while nothing was dropped; once layers are
    dropped its publisher number would take another packet's, so it is not sent."""
    harness = Harness()
    stream = l1t3_stream(24)
    rates = harness.track.layer_rates
    rates.sample(0.0)
    harness.publish(stream[:8])
    padding = Packet(stream[7].sequence + 1, stream[7].timestamp, False, 3, 2, b"")
    shifted = [
        Packet(p.sequence + 1, p.timestamp, p.marker, p.picture, p.layer, p.payload)
        for p in stream[8:]
    ]
    harness.publish([padding])
    assert len(harness.sender.sent) == 9
    rates.sample(0.5)
    harness.subscription.select_layer(0.1, 1.0)
    harness.publish(shifted)
    sent = len(harness.sender.sent)
    late_padding = Packet(shifted[-1].sequence + 1, shifted[-1].timestamp, False, 23, 2, b"")
    harness.publish([late_padding])
    assert len(harness.sender.sent) == sent
