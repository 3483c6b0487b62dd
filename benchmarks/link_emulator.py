"""A weak network link on 127.0.0.1: a UDP relay placed between one participant and the server.

Tests and benchmarks use it to put one participant behind an emulated access link without root
or kernel queueing disciplines. Each direction has a capacity (token-bucket serialisation at
``capacity_kbps``), a bounded drop-tail queue in front of it (``queue_ms`` of capacity and/or
``queue_bytes``), a one-way delay and loss on the wire (seedable): random, in bursts
(Gilbert-Elliott, :class:`BurstLoss`), and a total outage over a window of time (``outage``);
and counters of what was offered to it, delivered, dropped by the queue, by loss and by an
outage, with per-second byte buckets so a check can read the rate offered over any window.
Shapes change at run time; the uplink is shaped like the downlink (its own :class:`LinkShape`).

The participant's traffic crosses the relay because each side only learns the relay's
addresses: the participant's ICE candidates given to the server are rewritten to a relay port
("the participant as the server sees it"), and the server's candidates given to the participant
to another relay port ("the server as the participant sees it"); every other candidate is
dropped, so neither side can reach the other directly. This works for aiortc clients (all
candidates in the SDP) and for Chromium (trickled candidates, and any already in the SDP)::

    async with LinkEmulator(downlink=LinkShape(250, delay_ms=40, loss=0.01, queue_ms=500)) as link:
        offer_for_server = link.participant_sdp(client_offer)        # or .participant_candidate()
        answer_for_client = link.server_sdp(server_answer)           # or .server_candidate()
        ...
        link.set_shape(downlink=LinkShape(50, delay_ms=40, loss=0.01, queue_ms=500))
        link.downlink.counters, link.downlink.rate_kbps(5, 20, "offered")

``uplink`` is participant -> server, ``downlink`` server -> participant. Only loopback
addresses are relayed; packets from anywhere else are ignored.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Literal

Address = tuple[str, int]
Send = Callable[[bytes], None]
Measure = Literal["offered", "delivered"]

LOOPBACK = "127.0.0.1"
MAX_QUEUE_BYTES = 4 * 1024 * 1024
MAX_MAPPINGS = 32
BUCKET_RETENTION_S = 3600
_RECEIVE_BUFFER = 1024 * 1024
_DATAGRAM_MAX = 65535


@dataclass(frozen=True)
class BurstLoss:
    """Gilbert-Elliott loss: per packet, a good state that loses none and a bad state that
    loses every packet; ``enter_bad`` and ``leave_bad`` are the chances per packet of moving
    from one to the other, so bursts last ``1 / leave_bad`` packets on average."""

    enter_bad: float
    leave_bad: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.enter_bad <= 1.0 or not 0.0 < self.leave_bad <= 1.0:
            raise ValueError("enter_bad must be within 0..1 and leave_bad within (0, 1]")

    @classmethod
    def of(cls, mean_loss: float, mean_burst: float) -> BurstLoss:
        """The chain losing ``mean_loss`` of the packets in bursts of ``mean_burst`` on average."""
        if not 0.0 <= mean_loss < 1.0 or mean_burst < 1.0:
            raise ValueError("mean_loss must be within [0, 1) and mean_burst at least 1")
        leave = 1.0 / mean_burst
        return cls(enter_bad=mean_loss * leave / (1.0 - mean_loss), leave_bad=leave)

    @property
    def mean_loss(self) -> float:
        return self.enter_bad / (self.enter_bad + self.leave_bad)


@dataclass(frozen=True)
class LinkShape:
    """One direction of a link; ``capacity_kbps=None`` means no serialisation limit.

    ``loss`` drops packets at random, ``burst`` in bursts (both may apply); ``outage`` is a
    window ``(from_s, until_s)`` of seconds since the relay started in which nothing gets
    through (give both directions the same window for a total outage).
    """

    capacity_kbps: float | None = None
    delay_ms: float = 0.0
    loss: float = 0.0
    queue_ms: float | None = 500.0
    queue_bytes: int | None = None
    burst: BurstLoss | None = None
    outage: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.outage is not None and not 0.0 <= self.outage[0] <= self.outage[1]:
            raise ValueError("outage must be (from_s, until_s) with 0 <= from_s <= until_s")
        if self.capacity_kbps is not None and self.capacity_kbps <= 0:
            raise ValueError("capacity_kbps must be positive (or None for unlimited)")
        if self.delay_ms < 0 or not 0.0 <= self.loss <= 1.0:
            raise ValueError("delay_ms must be >= 0 and loss within 0..1")
        if (self.queue_ms is not None and self.queue_ms < 0) or (
            self.queue_bytes is not None and self.queue_bytes < 0
        ):
            raise ValueError("queue limits must be >= 0")

    def queue_limit_bytes(self) -> int:
        """Bytes the queue may hold: the tighter of its limits, never above MAX_QUEUE_BYTES."""
        limits = [MAX_QUEUE_BYTES]
        if self.queue_bytes is not None:
            limits.append(self.queue_bytes)
        if self.queue_ms is not None and self.capacity_kbps is not None:
            limits.append(int(self.queue_ms * self.capacity_kbps / 8))
        return min(limits)


@dataclass
class DirectionCounters:
    """Packets and bytes one direction has seen since the relay started."""

    packets_offered: int = 0
    bytes_offered: int = 0
    packets_delivered: int = 0
    bytes_delivered: int = 0
    packets_dropped_queue: int = 0
    bytes_dropped_queue: int = 0
    packets_dropped_loss: int = 0
    bytes_dropped_loss: int = 0
    packets_dropped_outage: int = 0
    bytes_dropped_outage: int = 0
    send_errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class PerSecondBytes:
    """Bytes counted in one-second buckets from a start time (bounded retention)."""

    def __init__(self, started_at: float) -> None:
        self._started_at = started_at
        self._buckets: dict[int, int] = {}

    def add(self, now: float, size: int) -> None:
        second = int(now - self._started_at)
        if second not in self._buckets:
            for old in [s for s in self._buckets if s <= second - BUCKET_RETENTION_S]:
                del self._buckets[old]
        self._buckets[second] = self._buckets.get(second, 0) + size

    def per_second(self, start_s: int, end_s: int) -> list[int]:
        """Bytes in each whole second ``start_s <= s < end_s`` since the start."""
        return [self._buckets.get(second, 0) for second in range(start_s, end_s)]


class LossModel:
    """What the wire drops, packet by packet: the outage window, burst and random loss."""

    def __init__(self, rng: random.Random) -> None:
        self._random = rng
        self._bad = False

    def drop(self, shape: LinkShape, elapsed_s: float) -> Literal["outage", "loss"] | None:
        """Why the packet leaving the wire ``elapsed_s`` after the start is dropped, if it is."""
        if shape.outage is not None and shape.outage[0] <= elapsed_s < shape.outage[1]:
            return "outage"
        burst = shape.burst
        if burst is not None:
            draw = self._random.random()
            self._bad = draw >= burst.leave_bad if self._bad else draw < burst.enter_bad
            if self._bad:
                return "loss"
        if shape.loss and self._random.random() < shape.loss:
            return "loss"
        return None


class ShapedDirection:
    """One direction: drop-tail queue -> serialisation at capacity -> delay -> random loss."""

    def __init__(self, name: str, shape: LinkShape, seed: int | None) -> None:
        self.name = name
        self.counters = DirectionCounters()
        self._shape = shape
        self._losses = LossModel(random.Random(seed))
        self._loop = asyncio.get_running_loop()
        self.started_at = self._loop.time()
        self._offered = PerSecondBytes(self.started_at)
        self._delivered = PerSecondBytes(self.started_at)
        self._queue: deque[tuple[bytes, Send, float]] = deque()
        self._queued_bytes = 0
        self._queue_ready = asyncio.Event()
        self._wire: deque[tuple[float, bytes, Send]] = deque()
        self._wire_ready = asyncio.Event()
        self._line_free_at = self.started_at
        self._tasks = [
            asyncio.ensure_future(self._serialise()),
            asyncio.ensure_future(self._propagate()),
        ]

    @property
    def shape(self) -> LinkShape:
        return self._shape

    @shape.setter
    def shape(self, shape: LinkShape) -> None:
        """Applies to packets not yet serialised; the queue is trimmed to the new limit."""
        self._shape = shape
        limit = shape.queue_limit_bytes()
        while self._queued_bytes > limit:
            data, _, _ = self._queue.pop()
            self._queued_bytes -= len(data)
            self._count_drop_queue(len(data))

    def offer(self, data: bytes, send: Send) -> None:
        """Hand one datagram to the link; ``send`` puts it on the far side if it survives."""
        size = len(data)
        self.counters.packets_offered += 1
        self.counters.bytes_offered += size
        self._offered.add(self._loop.time(), size)
        if self._queued_bytes + size > self._shape.queue_limit_bytes():
            self._count_drop_queue(size)
            return
        self._queue.append((data, send, self._loop.time()))
        self._queued_bytes += size
        self._queue_ready.set()

    def per_second(self, start_s: int, end_s: int, measure: Measure = "offered") -> list[int]:
        """Bytes offered to (or delivered by) the link in each second of ``[start_s, end_s)``."""
        buckets = self._offered if measure == "offered" else self._delivered
        return buckets.per_second(start_s, end_s)

    def rate_kbps(self, start_s: int, end_s: int, measure: Measure = "offered") -> float:
        """Mean rate over whole seconds ``[start_s, end_s)`` counted from the relay's start."""
        if end_s <= start_s:
            raise ValueError("the window must end after it starts")
        return sum(self.per_second(start_s, end_s, measure)) * 8 / 1000 / (end_s - start_s)

    def elapsed_s(self) -> float:
        return self._loop.time() - self.started_at

    def _count_drop_queue(self, size: int) -> None:
        self.counters.packets_dropped_queue += 1
        self.counters.bytes_dropped_queue += size

    async def _serialise(self) -> None:
        while True:
            while not self._queue:
                self._queue_ready.clear()
                await self._queue_ready.wait()
            data, send, queued_at = self._queue.popleft()
            self._queued_bytes -= len(data)
            capacity = self._shape.capacity_kbps
            now = self._loop.time()
            if capacity is not None:
                # A virtual line clock: a packet starts when the line is free or when it was
                # queued, whichever is later, not when this task woke (which may be late on a
                # busy machine), so sleep overshoot does not turn into lost capacity.
                self._line_free_at = max(queued_at, self._line_free_at) + len(data) * 8 / (
                    capacity * 1000
                )
                await asyncio.sleep(self._line_free_at - now)
                now = self._loop.time()
            due = now + self._shape.delay_ms / 1000
            if self._wire:  # a link never reorders, even when its delay shrinks
                due = max(due, self._wire[-1][0])
            self._wire.append((due, data, send))
            self._wire_ready.set()

    async def _propagate(self) -> None:
        while True:
            while not self._wire:
                self._wire_ready.clear()
                await self._wire_ready.wait()
            due, data, send = self._wire[0]
            wait = due - self._loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self._wire.popleft()
            dropped = self._losses.drop(self._shape, self.elapsed_s())
            if dropped == "outage":
                self.counters.packets_dropped_outage += 1
                self.counters.bytes_dropped_outage += len(data)
                continue
            if dropped == "loss":
                self.counters.packets_dropped_loss += 1
                self.counters.bytes_dropped_loss += len(data)
                continue
            try:
                send(data)
            except OSError:
                self.counters.send_errors += 1
                continue
            self.counters.packets_delivered += 1
            self.counters.bytes_delivered += len(data)
            self._delivered.add(self._loop.time(), len(data))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class _Port:
    """One relay UDP socket on 127.0.0.1 standing in for ``peer`` (the far side's address)."""

    def __init__(self, peer: Address, on_datagram: Callable[[_Port, bytes, Address], None]) -> None:
        self.peer = peer
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER)
        self.sock.bind((LOOPBACK, 0))
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]
        self._on_datagram = on_datagram
        asyncio.get_running_loop().add_reader(self.sock.fileno(), self._readable)

    def _readable(self) -> None:
        while True:
            try:
                data, source = self.sock.recvfrom(_DATAGRAM_MAX)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. ICMP port unreachable reported on a later receive
                continue
            self._on_datagram(self, data, (source[0], source[1]))

    def send(self, data: bytes, destination: Address) -> None:
        self.sock.sendto(data, destination)

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()


def _is_loopback(host: str) -> bool:
    """IPv4 loopback only: the relay's sockets are IPv4 on 127.0.0.1."""
    try:
        return ipaddress.IPv4Address(host).is_loopback
    except ValueError:
        return False


class LinkEmulator:
    """The relay: one participant's link to the server, shaped per direction (see module doc)."""

    def __init__(
        self,
        downlink: LinkShape | None = None,
        uplink: LinkShape | None = None,
        seed: int | None = 0,
    ) -> None:
        self._downlink_shape = downlink or LinkShape()
        self._uplink_shape = uplink or LinkShape()
        self._seed = seed
        self._server_faces: dict[Address, _Port] = {}
        self._participant_faces: dict[Address, _Port] = {}
        self.ignored_datagrams = 0
        self._started = False
        self._closed = False

    async def __aenter__(self) -> LinkEmulator:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start(self) -> None:
        """Create both directions (call inside the running event loop)."""
        seed = self._seed
        self.uplink = ShapedDirection("uplink", self._uplink_shape, seed)
        self.downlink = ShapedDirection(
            "downlink", self._downlink_shape, None if seed is None else seed + 1
        )
        self._started = True

    def set_shape(self, downlink: LinkShape | None = None, uplink: LinkShape | None = None) -> None:
        """Change either direction while traffic flows."""
        if downlink is not None:
            self.downlink.shape = downlink
        if uplink is not None:
            self.uplink.shape = uplink

    def set_capacity(self, kbps: float | None, direction: str = "downlink") -> None:
        """Change one direction's capacity and keep its other settings."""
        shaped = self.downlink if direction == "downlink" else self.uplink
        shaped.shape = replace(shaped.shape, capacity_kbps=kbps)

    # Candidate rewriting -------------------------------------------------------------------

    def participant_sdp(self, sdp: str) -> str:
        """The participant's SDP as the server must see it (candidates point at the relay)."""
        return _rewrite_sdp(sdp, self.participant_candidate)

    def server_sdp(self, sdp: str) -> str:
        """The server's SDP as the participant must see it."""
        return _rewrite_sdp(sdp, self.server_candidate)

    def participant_candidate(self, candidate: str) -> str | None:
        """A participant candidate rewritten to its relay port; ``None`` to drop it."""
        return _rewrite_candidate(candidate, self._participant_face)

    def server_candidate(self, candidate: str) -> str | None:
        """A server candidate rewritten to its relay port; ``None`` to drop it."""
        return _rewrite_candidate(candidate, self._server_face)

    def participant_ports(self) -> dict[Address, int]:
        """Participant address -> the relay port the server talks to."""
        return {address: face.port for address, face in self._participant_faces.items()}

    def server_ports(self) -> dict[Address, int]:
        """Server address -> the relay port the participant talks to."""
        return {address: face.port for address, face in self._server_faces.items()}

    # Forwarding -----------------------------------------------------------------------------

    def _server_face(self, server: Address) -> _Port | None:
        return self._face(self._server_faces, server, self._from_participant)

    def _participant_face(self, participant: Address) -> _Port | None:
        return self._face(self._participant_faces, participant, self._from_server)

    def _face(
        self,
        faces: dict[Address, _Port],
        peer: Address,
        on_datagram: Callable[[_Port, bytes, Address], None],
    ) -> _Port | None:
        if self._closed:  # late signalling after the link went away crosses nothing
            return None
        if not self._started:
            raise RuntimeError("start the link emulator before rewriting candidates")
        face = faces.get(peer)
        if face is None:
            if not _is_loopback(peer[0]) or len(faces) >= MAX_MAPPINGS:
                return None
            face = faces[peer] = _Port(peer, on_datagram)
        return face

    def _from_participant(self, server_face: _Port, data: bytes, source: Address) -> None:
        out = self._participant_face(source)
        if out is None:
            self.ignored_datagrams += 1
            return
        server = server_face.peer
        self.uplink.offer(data, lambda payload: out.send(payload, server))

    def _from_server(self, participant_face: _Port, data: bytes, source: Address) -> None:
        back = self._server_face(source)
        if back is None:
            self.ignored_datagrams += 1
            return
        participant = participant_face.peer
        self.downlink.offer(data, lambda payload: back.send(payload, participant))

    async def close(self) -> None:
        if not self._started or self._closed:
            return
        self._closed = True
        await self.uplink.close()
        await self.downlink.close()
        for face in [*self._server_faces.values(), *self._participant_faces.values()]:
            face.close()
        self._server_faces.clear()
        self._participant_faces.clear()


def loopback_sdp(sdp: str) -> str:
    """``sdp`` with only its UDP candidates on 127.0.0.1: two pages connected without the
    emulator between them still only talk over loopback."""
    return _rewrite_sdp(sdp, _loopback_candidate)


def _loopback_candidate(candidate: str) -> str | None:
    parts = candidate.strip().split()
    if not parts:
        return candidate
    keep = len(parts) >= 8 and parts[2].lower() == "udp" and parts[4] == LOOPBACK
    return candidate if keep else None


def _rewrite_sdp(sdp: str, rewrite: Callable[[str], str | None]) -> str:
    newline = "\r\n" if "\r\n" in sdp else "\n"
    lines = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            rewritten = rewrite(line[2:])
            if rewritten is None:
                continue
            line = "a=" + rewritten
        lines.append(line)
    return newline.join(lines) + newline


def _rewrite_candidate(candidate: str, face_for: Callable[[Address], _Port | None]) -> str | None:
    """``candidate:<foundation> <component> udp <priority> <ip> <port> typ ...`` -> relay port.

    An empty candidate (end of candidates) passes unchanged; TCP, IPv6, mDNS names and
    non-loopback addresses are dropped so no path bypasses the relay.
    """
    text = candidate.strip()
    if not text:
        return candidate
    prefixed = text.startswith("candidate:")
    parts = (text[len("candidate:") :] if prefixed else text).split()
    if len(parts) < 8 or parts[2].lower() != "udp" or not parts[5].isdigit():
        return None
    face = face_for((parts[4], int(parts[5])))
    if face is None:
        return None
    parts[4], parts[5] = LOOPBACK, str(face.port)
    # raddr/rport describe the candidate's base; a relay port has none worth announcing.
    if "raddr" in parts:
        index = parts.index("raddr")
        del parts[index : index + 4]
    return ("candidate:" if prefixed else "") + " ".join(parts)
