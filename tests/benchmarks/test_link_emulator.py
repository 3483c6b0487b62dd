"""The link emulator with real UDP sockets on 127.0.0.1: shaping, counters, candidate rewriting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import cast

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from benchmarks.link_emulator import LinkEmulator, LinkShape
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
