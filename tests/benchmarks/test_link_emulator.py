"""The link emulator with real UDP sockets on 127.0.0.1: shaping, counters, candidate rewriting."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import cast

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from benchmarks.link_emulator import BurstLoss, LinkEmulator, LinkShape, LossModel, loopback_sdp
from media.aiortc_adapter import inspection, restrict_host_addresses

UNLIMITED = LinkShape(queue_ms=None)


class Endpoint(asyncio.DatagramProtocol):
    """A UDP socket on 127.0.0.1 that keeps what it receives with the arrival time."""

    def __init__(self) -> None:
        self.received: list[tuple[float, bytes, tuple[str, int]]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.append((time.monotonic(), data, addr))

    @property
    def address(self) -> tuple[str, int]:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return host, port

    def send(self, data: bytes, destination: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(data, destination)


@dataclass
class Wired:
    """A participant and a server socket that only know each other through the relay."""

    link: LinkEmulator
    participant: Endpoint
    server: Endpoint
    server_seen_at: tuple[str, int]  # where the participant sends to reach the server
    participant_seen_at: tuple[str, int]  # where the server sends to reach the participant

    def down(self, data: bytes) -> None:
        self.server.send(data, self.participant_seen_at)

    def up(self, data: bytes) -> None:
        self.participant.send(data, self.server_seen_at)


async def endpoint() -> Endpoint:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_datagram_endpoint(Endpoint, local_addr=("127.0.0.1", 0))
    return protocol


def host_candidate(address: tuple[str, int]) -> str:
    return f"candidate:1 1 udp 2130706431 {address[0]} {address[1]} typ host"


def port_of(candidate: str | None) -> tuple[str, int]:
    assert candidate is not None
    parts = candidate.split()
    return parts[4], int(parts[5])


@pytest.fixture
async def wire() -> AsyncIterator[Callable[..., Awaitable[Wired]]]:
    made: list[tuple[LinkEmulator, Endpoint, Endpoint]] = []

    async def make(
        downlink: LinkShape = UNLIMITED, uplink: LinkShape = UNLIMITED, seed: int = 7
    ) -> Wired:
        link = LinkEmulator(downlink=downlink, uplink=uplink, seed=seed)
        link.start()
        participant, server = await endpoint(), await endpoint()
        made.append((link, participant, server))
        return Wired(
            link,
            participant,
            server,
            server_seen_at=port_of(link.server_candidate(host_candidate(server.address))),
            participant_seen_at=port_of(
                link.participant_candidate(host_candidate(participant.address))
            ),
        )

    yield make
    for link, participant, server in made:
        await link.close()
        for side in (participant, server):
            assert side.transport is not None
            side.transport.close()


async def wait_until(predicate: Callable[[], bool], within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


MakeWire = Callable[..., Awaitable[Wired]]


async def test_both_directions_cross_the_relay_and_are_counted(wire: MakeWire) -> None:
    wired = await wire()
    wired.down(b"to participant")
    wired.up(b"to server")
    await wait_until(lambda: bool(wired.participant.received and wired.server.received))
    # Each side sees the relay, never the other's real address.
    assert wired.participant.received[0][1:] == (b"to participant", wired.server_seen_at)
    assert wired.server.received[0][1:] == (b"to server", wired.participant_seen_at)
    down, up = wired.link.downlink.counters, wired.link.uplink.counters
    assert (down.packets_offered, down.bytes_offered, down.packets_delivered) == (1, 14, 1)
    assert (up.packets_offered, up.bytes_offered, up.bytes_delivered) == (1, 9, 9)


async def test_capacity_serialises_at_the_configured_rate(wire: MakeWire) -> None:
    wired = await wire(downlink=LinkShape(capacity_kbps=200, queue_bytes=100_000, queue_ms=None))
    for _ in range(40):
        wired.down(bytes(1000))
    await wait_until(lambda: len(wired.participant.received) == 40)
    spread = wired.participant.received[-1][0] - wired.participant.received[0][0]
    measured_kbps = 39 * 1000 * 8 / spread / 1000
    # 40 ms per packet: never faster than the line, and not much slower on a loaded machine.
    assert 160 <= measured_kbps <= 205, measured_kbps
    assert wired.link.downlink.counters.packets_dropped_queue == 0


async def test_delay_is_added_per_direction(wire: MakeWire) -> None:
    wired = await wire(downlink=LinkShape(delay_ms=120), uplink=LinkShape(delay_ms=10))
    sent = time.monotonic()
    wired.down(b"slow")
    wired.up(b"fast")
    await wait_until(lambda: bool(wired.participant.received and wired.server.received))
    down_ms = (wired.participant.received[0][0] - sent) * 1000
    up_ms = (wired.server.received[0][0] - sent) * 1000
    assert 120 <= down_ms < 400, down_ms
    assert 10 <= up_ms < down_ms, up_ms


async def test_random_loss_follows_the_rate_and_the_seed(wire: MakeWire) -> None:
    async def delivered_through_lossy_link() -> list[int]:
        wired = await wire(downlink=LinkShape(loss=0.2), seed=11)
        for index in range(500):
            wired.down(index.to_bytes(2, "big"))
            if index % 25 == 0:  # stay within the receiving socket's buffer
                await asyncio.sleep(0.005)
        counters = wired.link.downlink.counters
        await wait_until(lambda: counters.packets_delivered + counters.packets_dropped_loss == 500)
        await wait_until(lambda: len(wired.participant.received) == counters.packets_delivered)
        assert 60 <= counters.packets_dropped_loss <= 140
        assert counters.bytes_dropped_loss == 2 * counters.packets_dropped_loss
        return [int.from_bytes(data, "big") for _, data, _ in wired.participant.received]

    first, second = await delivered_through_lossy_link(), await delivered_through_lossy_link()
    assert first == second  # same seed, same losses, order kept
    assert first == sorted(first)


def loss_runs(shape: LinkShape, packets: int, seed: int = 3) -> tuple[float, float]:
    """(fraction lost, mean length of a run of lost packets) of the model over ``packets``."""
    model = LossModel(random.Random(seed))
    lost = [model.drop(shape, 0.0) == "loss" for _ in range(packets)]
    runs = [1 for earlier, now in zip([False, *lost], lost, strict=False) if now and not earlier]
    return sum(lost) / packets, sum(lost) / max(1, len(runs))


def test_burst_loss_drops_its_mean_in_bursts_of_several_packets() -> None:
    burst = BurstLoss.of(mean_loss=0.05, mean_burst=4.0)
    assert burst.mean_loss == pytest.approx(0.05)
    assert burst.leave_bad == pytest.approx(0.25)
    fraction, run = loss_runs(LinkShape(burst=burst), 40_000)
    assert 0.04 <= fraction <= 0.06, fraction
    assert 3.0 <= run <= 5.0, run
    # Random loss at the same mean comes one packet at a time.
    fraction, run = loss_runs(LinkShape(loss=0.05), 40_000)
    assert 0.04 <= fraction <= 0.06 and run < 1.2, (fraction, run)


def test_burst_loss_follows_the_seed() -> None:
    shape = LinkShape(burst=BurstLoss.of(0.05, 4.0))

    def draws(seed: int) -> list[str | None]:
        model = LossModel(random.Random(seed))
        return [model.drop(shape, 0.0) for _ in range(500)]

    assert draws(1) == draws(1) != draws(2)


def test_an_outage_drops_everything_in_its_window_only() -> None:
    model = LossModel(random.Random(0))
    shape = LinkShape(outage=(10.0, 13.0))
    assert [model.drop(shape, at) for at in (9.99, 10.0, 12.99, 13.0)] == [
        None,
        "outage",
        "outage",
        None,
    ]


@pytest.mark.parametrize(
    "make",
    [
        lambda: BurstLoss(enter_bad=0.1, leave_bad=0.0),
        lambda: BurstLoss(enter_bad=1.5, leave_bad=0.5),
        lambda: BurstLoss.of(mean_loss=1.0, mean_burst=4.0),
        lambda: BurstLoss.of(mean_loss=0.05, mean_burst=0.5),
        lambda: LinkShape(outage=(5.0, 2.0)),
        lambda: LinkShape(outage=(-1.0, 2.0)),
    ],
)
def test_impossible_models_are_refused(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        make()


async def test_a_total_outage_in_the_middle_cuts_both_directions(wire: MakeWire) -> None:
    cut = LinkShape(queue_ms=None, outage=(0.5, 1.5))
    wired = await wire(downlink=cut, uplink=cut)
    for at in (0.0, 0.6, 1.6):  # before, during and after the window (with time to spare)
        await asyncio.sleep(max(0.0, at - wired.link.downlink.elapsed_s()))
        for _ in range(5):
            wired.down(b"d")
            wired.up(b"u")
    down, up = wired.link.downlink.counters, wired.link.uplink.counters
    await wait_until(lambda: down.packets_delivered == 10 and up.packets_delivered == 10)
    assert (down.packets_dropped_outage, up.packets_dropped_outage) == (5, 5)
    assert down.bytes_dropped_outage == 5 and down.packets_dropped_loss == 0


async def test_the_uplink_is_shaped_on_its_own(wire: MakeWire) -> None:
    wired = await wire(uplink=LinkShape(capacity_kbps=200, queue_bytes=100_000, queue_ms=None))
    for _ in range(20):
        wired.up(bytes(1000))
        wired.down(bytes(1000))
    await wait_until(lambda: len(wired.server.received) == 20)
    up_spread = wired.server.received[-1][0] - wired.server.received[0][0]
    down_spread = wired.participant.received[-1][0] - wired.participant.received[0][0]
    assert 19 * 1000 * 8 / up_spread / 1000 <= 205, up_spread  # 40 ms a packet at 200 kbit/s
    assert down_spread < up_spread / 4, (down_spread, up_spread)


async def test_drop_tail_queue_bounds_what_waits(wire: MakeWire) -> None:
    # 80 kbit/s and 100 ms of queue: 1000 bytes wait at most, the rest of a burst is dropped.
    wired = await wire(downlink=LinkShape(capacity_kbps=80, queue_ms=100))
    for _ in range(20):
        wired.down(bytes(500))
    counters = wired.link.downlink.counters
    await wait_until(lambda: counters.packets_delivered + counters.packets_dropped_queue == 20)
    assert counters.packets_dropped_queue >= 16
    assert counters.bytes_dropped_queue == 500 * counters.packets_dropped_queue
    await wait_until(lambda: len(wired.participant.received) == counters.packets_delivered)


async def test_queue_limit_in_bytes(wire: MakeWire) -> None:
    wired = await wire(downlink=LinkShape(capacity_kbps=80, queue_ms=None, queue_bytes=1500))
    for _ in range(10):
        wired.down(bytes(500))
    counters = wired.link.downlink.counters
    await wait_until(lambda: counters.packets_delivered + counters.packets_dropped_queue == 10)
    assert 3 <= counters.packets_delivered <= 4


async def test_shape_changes_at_run_time_and_windows_read_the_rate(wire: MakeWire) -> None:
    fast = LinkShape(capacity_kbps=400, queue_ms=200)
    wired = await wire(downlink=fast)
    link = wired.link.downlink

    async def stream(seconds: float) -> None:
        # 200 kbit/s offered: 1000 bytes every 40 ms.
        for _ in range(int(seconds / 0.04)):
            wired.down(bytes(1000))
            await asyncio.sleep(0.04)

    await stream(1.0)
    assert link.counters.packets_dropped_queue == 0
    wired.link.set_shape(downlink=LinkShape(capacity_kbps=80, queue_ms=200))
    phase_start = int(link.elapsed_s()) + 1
    await stream(2.2)
    phase_end = int(link.elapsed_s())
    assert link.counters.packets_dropped_queue > 0
    delivered = link.per_second(phase_start, phase_end, "delivered")
    assert delivered and max(delivered) * 8 / 1000 <= 80 * 1.05, delivered
    assert link.rate_kbps(phase_start, phase_end, "offered") > 150
    drops = link.counters.packets_dropped_queue
    wired.link.set_capacity(400)
    await asyncio.sleep(0.3)  # the queue drains at the new rate
    await stream(1.0)
    assert link.counters.packets_dropped_queue == drops
    total = sum(link.per_second(0, int(link.elapsed_s()) + 1, "offered"))
    assert total == link.counters.bytes_offered


async def test_candidates_that_would_bypass_the_relay_are_dropped() -> None:
    async with LinkEmulator() as link:
        assert (
            link.participant_candidate("candidate:2 1 tcp 1518280447 127.0.0.1 9 typ host") is None
        )
        assert (
            link.participant_candidate("candidate:3 1 udp 2122260223 10.1.2.3 5000 typ host")
            is None
        )
        assert (
            link.participant_candidate("candidate:4 1 udp 2122260223 abc.local 5000 typ host")
            is None
        )
        assert link.participant_candidate("candidate:5 1 udp 2122262783 ::1 5000 typ host") is None
        assert link.participant_candidate("") == ""
        kept = link.participant_candidate(
            "candidate:6 1 udp 1686052607 127.0.0.1 6000 typ srflx raddr 0.0.0.0 rport 0 "
            "generation 0 ufrag abcd"
        )
        port = link.participant_ports()[("127.0.0.1", 6000)]
        assert kept == (
            f"candidate:6 1 udp 1686052607 127.0.0.1 {port} typ srflx generation 0 ufrag abcd"
        )
        sdp = (
            "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
            "a=candidate:1 1 udp 2130706431 127.0.0.1 7000 typ host\r\n"
            "a=candidate:2 1 udp 2130706431 192.168.1.2 7001 typ host\r\n"
            "a=end-of-candidates\r\n"
        )
        rewritten = link.server_sdp(sdp)
        server_port = link.server_ports()[("127.0.0.1", 7000)]
        assert rewritten == (
            "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
            f"a=candidate:1 1 udp 2130706431 127.0.0.1 {server_port} typ host\r\n"
            "a=end-of-candidates\r\n"
        )


async def test_aiortc_peers_connect_only_through_the_relay() -> None:
    """Real ICE + DTLS through the relay; the server's selected pair is a relay port."""
    async with LinkEmulator(downlink=LinkShape(capacity_kbps=500, delay_ms=20)) as link:
        participant, server = RTCPeerConnection(), RTCPeerConnection()
        try:
            participant.addTransceiver("audio", direction="sendrecv")
            restrict_host_addresses(participant, ("127.0.0.1",))
            await participant.setLocalDescription(await participant.createOffer())
            await server.setRemoteDescription(
                RTCSessionDescription(
                    link.participant_sdp(participant.localDescription.sdp), "offer"
                )
            )
            restrict_host_addresses(server, ("127.0.0.1",))
            await server.setLocalDescription(await server.createAnswer())
            await participant.setRemoteDescription(
                RTCSessionDescription(link.server_sdp(server.localDescription.sdp), "answer")
            )
            await wait_until(
                lambda: participant.connectionState == server.connectionState == "connected", 15
            )
            assert link.uplink.counters.packets_delivered > 0
            assert link.downlink.counters.packets_delivered > 0
            ice = server.getTransceivers()[0].receiver.transport.transport
            nominated = inspection.nominated_pairs(ice)
            assert {pair.remote_candidate.port for pair in nominated.values()} <= set(
                link.participant_ports().values()
            )
        finally:
            await participant.close()
            await server.close()


def test_a_loopback_sdp_keeps_only_udp_candidates_on_127_0_0_1() -> None:
    sdp = "\r\n".join(
        [
            "v=0",
            "a=candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host generation 0",
            "a=candidate:2 1 udp 2122260223 192.168.1.9 5001 typ host",
            "a=candidate:3 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active",
            "a=candidate:4 1 udp 2122260223 abc.local 5002 typ host",
            "a=end-of-candidates",
            "",
        ]
    )
    assert loopback_sdp(sdp) == "\r\n".join(
        [
            "v=0",
            "a=candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host generation 0",
            "a=end-of-candidates",
            "",
        ]
    )
