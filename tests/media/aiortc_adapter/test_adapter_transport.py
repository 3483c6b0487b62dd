"""SRTP handled as each datagram arrives and sent in one call (aiortc_adapter/transport.py)."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
from aiortc.rtcdtlstransport import RTCDtlsTransport, State

from media.aiortc_adapter import transport
from media.aiortc_adapter.transport import send_rtp_now
from tests.media.clients import ClientPeer, assert_see_and_hear_each_other
from tests.media.conftest import Room


def fake_transport(protocol: Any, state: State = State.CONNECTED) -> Any:
    """A connected DTLS transport as :func:`send_rtp_now` sees one."""
    pair = SimpleNamespace(protocol=protocol, remote_addr=("127.0.0.1", 9))
    connection = SimpleNamespace(_nominated={1: pair})
    srtp = SimpleNamespace(protect=lambda data: b"srtp:" + data)
    return SimpleNamespace(
        _state=state,
        _tx_srtp=srtp,
        transport=SimpleNamespace(_connection=connection),
        _RTCDtlsTransport__tx_bytes=0,
        _RTCDtlsTransport__tx_packets=0,
    )


def test_another_protocol_or_a_closed_transport_is_left_to_aiortc() -> None:
    other = SimpleNamespace()  # not aioice's StunProtocol
    assert send_rtp_now(fake_transport(other), b"rtp") is False
    with pytest.raises(ConnectionError):
        send_rtp_now(fake_transport(other, State.CLOSED), b"rtp")


def packets_received(dtls: RTCDtlsTransport) -> int:
    report = dtls._get_stats()
    return int(next(iter(report.values())).packetsReceived)


async def test_media_between_real_peers_never_waits_in_aioice_queue(room: Room) -> None:
    outlet = await room.join(ClientPeer("outlet-1", rgb=(220, 40, 40), hz=440))
    doctor = await room.join(ClientPeer("dr-li", rgb=(30, 60, 220), hz=1000))
    await assert_see_and_hear_each_other(outlet, doctor)

    queued: list[bytes] = []
    transports: list[RTCDtlsTransport] = []
    for participant_id in room.router.participant_ids:
        pc = room.router.peer(participant_id).pc
        for dtls in {t.receiver.transport for t in pc.getTransceivers()}:
            queue = dtls.transport._connection._queue
            put = queue.put_nowait

            def counting(item: Any, put: Any = put) -> None:
                queued.append(item[0] if item else b"")
                put(item)

            queue.put_nowait = counting
            transports.append(dtls)
    before = [packets_received(dtls) for dtls in transports]
    await asyncio.sleep(1.0)  # media keeps flowing both ways
    after = [packets_received(dtls) for dtls in transports]
    assert all(b < a for b, a in zip(before, after, strict=True)), "the statistics still count"
    assert not [d for d in queued if 127 < d[0] < 192], "SRTP went through aioice's queue"


async def test_an_empty_datagram_to_the_media_port_ends_nothing(room: Room) -> None:
    outlet = await room.join(ClientPeer("outlet-1", rgb=(220, 40, 40), hz=440))
    doctor = await room.join(ClientPeer("dr-li", rgb=(30, 60, 220), hz=1000))
    await assert_see_and_hear_each_other(outlet, doctor)
    pc = room.router.peer("outlet-1").pc
    dtls = pc.getTransceivers()[0].receiver.transport
    pair = dtls.transport._connection._nominated[1]
    host, port = pair.protocol.transport.get_extra_info("sockname")[:2]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as attacker:
        attacker.sendto(b"", (host, port))
    await asyncio.sleep(0.5)
    assert dtls.state == "connected"
    before = packets_received(dtls)
    await asyncio.sleep(1.0)
    assert packets_received(dtls) > before, "media still arrives"


async def test_packets_go_unparsed_with_statistics_estimate_nacks_and_audio_level(
    room: Room,
) -> None:
    outlet = await room.join(ClientPeer("outlet-1", rgb=(220, 40, 40), hz=440))
    doctor = await room.join(ClientPeer("dr-li", rgb=(30, 60, 220), hz=1000))
    await assert_see_and_hear_each_other(outlet, doctor)

    parsed: Counter[str] = Counter()
    unparsed: Counter[str] = Counter()
    published = [
        t
        for t in room.router.peer("outlet-1").pc.getTransceivers()
        if t.currentDirection in ("recvonly", "sendrecv")
    ]
    for transceiver in published:
        receiver, kind = transceiver.receiver, transceiver.kind
        take, handle = receiver.receive_unparsed, receiver._handle_rtp_packet

        def counting_take(data: bytes, at: int, take: Any = take, kind: str = kind) -> bool:
            taken = bool(take(data, at))
            unparsed[kind] += taken
            return taken

        async def counting_handle(
            packet: Any, arrival_time_ms: int, handle: Any = handle, kind: str = kind
        ) -> None:
            parsed[kind] += 1
            await handle(packet, arrival_time_ms)

        receiver.receive_unparsed = counting_take  # type: ignore[method-assign]
        receiver._handle_rtp_packet = counting_handle  # type: ignore[method-assign]
    levels: list[Any] = []
    heard = next(
        t.receiver
        for t in doctor.pc.getTransceivers()
        if t.kind == "audio" and t.currentDirection in ("recvonly", "sendrecv")
    )
    handle_at_doctor = heard._handle_rtp_packet

    async def noting_level(packet: Any, arrival_time_ms: int) -> None:
        levels.append(packet.extensions.audio_level)
        await handle_at_doctor(packet, arrival_time_ms)

    heard._handle_rtp_packet = noting_level  # type: ignore[method-assign]
    audio = next(t.receiver for t in published if t.kind == "audio")
    video = next(t.receiver for t in published if t.kind == "video")
    estimates: list[int] = []
    to_upstream = video._remb_listener

    def noting_estimate(bitrate: int, ssrcs: list[int]) -> None:
        estimates.append(bitrate)
        to_upstream(bitrate, ssrcs)

    video.on_remb(noting_estimate)
    nacked: list[list[int]] = []
    send_nack = video._send_rtcp_nack

    async def noting_nack(media_ssrc: int, lost: list[int]) -> None:
        nacked.append(lost)
        await send_nack(media_ssrc, lost)

    video._send_rtcp_nack = noting_nack
    nack_generator = video._RTCRtpReceiver__nack_generator
    received_before = [await inbound_packets(receiver) for receiver in (audio, video)]
    await asyncio.sleep(1.5)

    assert unparsed["audio"] >= 45 and parsed["audio"] == 0, (unparsed, parsed)
    assert unparsed["video"] >= 20 and parsed["video"] == 0, (unparsed, parsed)
    # The receive statistics behind the relay's receiver reports still count every packet.
    for receiver, before, kind in zip(
        (audio, video), received_before, ("audio", "video"), strict=True
    ):
        assert await inbound_packets(receiver) - before >= unparsed[kind] - 5
    # The bandwidth estimator still gets every arrival: it estimates once it has seen 3 s of
    # throughput, then every half second ...
    for _ in range(50):
        if len(estimates) >= 2:
            break
        await asyncio.sleep(0.1)
    assert len(estimates) >= 2, "no REMB from the server's estimator"
    # ... and the NACK generator every sequence number: made to forget the latest one, it
    # sees a gap when the next arrives and asks the publisher for it at once.
    forgotten = nack_generator.max_seq
    nack_generator.max_seq = (forgotten - 1) % 65536
    await asyncio.sleep(0.3)
    assert any(forgotten in lost for lost in nacked), (forgotten, nacked)
    # The publisher's audio level reaches the subscriber (aiortc's sender writes one).
    assert levels and all(level is not None for level in levels)
    await assert_see_and_hear_each_other(outlet, doctor)


async def inbound_packets(receiver: Any) -> int:
    report = await receiver.getStats()
    return sum(s.packetsReceived for s in report.values() if s.type == "inbound-rtp")


async def test_datagrams_queued_before_the_switch_are_handled_first_and_in_order() -> None:
    """What aioice queued before the switch must not be handled after newer packets: a
    subscription starting at a keyframe among them skipped the packets in between, and its
    receiver reported a fifth of the first second lost."""
    handled: list[int] = []

    async def handle_rtp(data: bytes, arrival_time_ms: int) -> None:
        handled.append(int.from_bytes(data[2:4], "big"))

    def rtp(sequence: int) -> bytes:
        return bytes((0x80, 96)) + sequence.to_bytes(2, "big") + bytes(8) + b"payload"

    dtls_record = bytes((22, 254, 253)) + bytes(10)  # a DTLS record: not SRTP, stays queued
    queue: asyncio.Queue[tuple[bytes, int] | None] = asyncio.Queue()
    connection = SimpleNamespace(_queue=queue, _nominated={})
    connection.data_received = lambda data, component: queue.put_nowait((data, component))
    for item in (rtp(1), dtls_record, rtp(2), rtp(3)):
        connection.data_received(item, 1)
    queue.put_nowait(None)  # the connection ended: the reader must still see it
    dtls = SimpleNamespace(
        transport=SimpleNamespace(_connection=connection),
        _rtp_router=SimpleNamespace(ssrc_table={}),
        _rx_srtp=SimpleNamespace(unprotect=lambda data: data),
        _state=State.CONNECTED,
        _handle_rtp_data=handle_rtp,
        _RTCDtlsTransport__rx_bytes=0,
        _RTCDtlsTransport__rx_packets=0,
    )

    transport.receive_directly(dtls)  # type: ignore[arg-type]
    connection.data_received(rtp(4), 1)  # arrives after the switch

    assert handled == [1, 2, 3, 4]
    assert queue.get_nowait() == (dtls_record, 1)
    assert queue.get_nowait() is None
    assert queue.empty()
