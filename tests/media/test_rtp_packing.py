"""The forwarding path's RTP serialiser: the same packets aiortc writes and reads, as bytes."""

from __future__ import annotations

import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket, unwrap_rtx, wrap_rtx

from media.rtp_packing import (
    ABS_SEND_TIME_URI,
    AUDIO_LEVEL_URI,
    MID_URI,
    ExtensionIds,
    ExtensionWriter,
    abs_send_time,
    audio_level,
    ntp_time,
    pack_extensions,
    pack_rtp,
    read_rtp,
    sequence_number,
)
from media.rtp_rewriter import RtpRewriter

NTP = ntp_time(1_700_000_000.25)


def extension_map(mid: int = 1, abs_time: int = 3, level: int = 4) -> HeaderExtensionsMap:
    extensions = HeaderExtensionsMap()
    extensions.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=mid, uri=MID_URI),
                RTCRtpHeaderExtensionParameters(id=abs_time, uri=ABS_SEND_TIME_URI),
                RTCRtpHeaderExtensionParameters(id=level, uri=AUDIO_LEVEL_URI),
            ]
        )
    )
    return extensions


def aiortc_packet(
    sequence: int = 7,
    timestamp: int = 90_000,
    payload: bytes = b"\x10\x00frame",
    padding_size: int = 0,
    mid: str | None = "2",
    level: tuple[bool, int] | None = None,
) -> RtpPacket:
    packet = RtpPacket(
        payload_type=96,
        marker=1,
        sequence_number=sequence,
        timestamp=timestamp,
        ssrc=0x1234ABCD,
        payload=payload,
    )
    packet.padding_size = padding_size
    packet.extensions.mid = mid
    packet.extensions.abs_send_time = (NTP >> 14) & 0xFFFFFF
    packet.extensions.audio_level = level
    return packet


def ours(packet: RtpPacket, ids: tuple[int, int, int] = (1, 3, 4), mid: str | None = "2") -> bytes:
    writer = ExtensionWriter(ExtensionIds(*ids), mid)
    return pack_rtp(
        packet.payload_type,
        bool(packet.marker),
        packet.sequence_number,
        packet.timestamp,
        packet.ssrc,
        packet.payload,
        writer.block(NTP, packet.extensions.audio_level),
        packet.padding_size,
    )


@pytest.mark.parametrize(
    "packet",
    [
        aiortc_packet(),
        aiortc_packet(mid=None),
        aiortc_packet(level=(True, 30)),
        aiortc_packet(level=(False, 127), payload=b"\xfc" * 80),
        aiortc_packet(payload=b"\x00" * 1100),
    ],
    ids=["video", "no-mid", "audio-level-voice", "audio-level-silent", "large"],
)
def test_bytes_equal_aiortc_serialisation(packet: RtpPacket) -> None:
    assert ours(packet, mid=packet.extensions.mid) == packet.serialize(extension_map())


def test_header_extensions_read_back_by_aiortc() -> None:
    data = ours(aiortc_packet(level=(True, 12)))
    parsed = RtpPacket.parse(data, extension_map())
    assert parsed.extensions.mid == "2"
    assert parsed.extensions.abs_send_time == (NTP >> 14) & 0xFFFFFF
    assert parsed.extensions.audio_level == (True, 12)
    assert parsed.payload == b"\x10\x00frame"
    assert len(read_rtp(data, None).payload) == len(b"\x10\x00frame")


def test_two_byte_form_for_ids_above_14_and_long_values() -> None:
    packet = aiortc_packet(mid="a-very-long-mid-value")
    data = ours(packet, ids=(15, 3, 4), mid="a-very-long-mid-value")
    assert data[12:14] == b"\x10\x00"  # RFC 8285 two-byte profile
    assert data == packet.serialize(extension_map(mid=15))
    assert RtpPacket.parse(data, extension_map(mid=15)).extensions.mid == "a-very-long-mid-value"


def test_writer_without_ids_writes_what_it_has() -> None:
    level = (True, 5)
    assert ExtensionWriter(ExtensionIds(), "0").block(NTP, level) == b""
    audio = ExtensionWriter(ExtensionIds(mid=1, audio_level=10), "0")
    assert audio.block(NTP, None) == pack_extensions([(1, b"0")])
    assert audio.block(NTP, level) == pack_extensions([(1, b"0"), (10, audio_level(*level))])
    video = ExtensionWriter(ExtensionIds(mid=1, abs_send_time=3), "1")
    assert video.block(NTP, level) == pack_extensions([(1, b"1"), (3, abs_send_time(NTP))])


def test_no_extensions_no_extension_bit() -> None:
    data = pack_rtp(111, False, 1, 2, 3, b"opus")
    assert len(data) == 16 and not data[0] & 0x10
    assert pack_extensions([]) == b""


def test_padding_only_packet_keeps_its_padding() -> None:
    packet = aiortc_packet(payload=b"", padding_size=224)
    data = ours(packet)
    assert data[0] & 0x20 and data[-1] == 224
    assert len(data) == len(packet.serialize(extension_map()))
    parsed = RtpPacket.parse(data, extension_map())
    assert parsed.payload == b"" and parsed.padding_size == 224
    assert len(read_rtp(data, None).payload) == 0


def test_padding_after_a_payload() -> None:
    data = ours(aiortc_packet(payload=b"abc", padding_size=5))
    parsed = RtpPacket.parse(data, extension_map())
    assert (parsed.payload, parsed.padding_size) == (b"abc", 5)
    assert len(read_rtp(data, None).payload) == 3


@pytest.mark.parametrize("padding_size", [0, 3])
def test_a_payload_head_replaces_the_start_of_the_payload(padding_size: int) -> None:
    payload = bytes(range(40))
    head = b"\xff\xfe\xfd"
    data = pack_rtp(96, True, 7, 9, 1, payload, b"", padding_size, head)
    plain = pack_rtp(96, True, 7, 9, 1, head + payload[3:], b"", padding_size)
    assert data == plain
    parsed = RtpPacket.parse(data)
    assert parsed.payload == head + payload[3:] and parsed.padding_size == padding_size


@pytest.mark.parametrize(
    ("sequence", "timestamp"),
    [(65_535, 4_294_967_295), (65_536, 4_294_967_296), (65_540, 4_294_967_300)],
)
def test_numbers_wrap(sequence: int, timestamp: int) -> None:
    data = pack_rtp(96, True, sequence, timestamp, 1, b"x")
    parsed = RtpPacket.parse(data)
    assert parsed.sequence_number == sequence % 65_536
    assert parsed.timestamp == timestamp % 4_294_967_296
    assert sequence_number(data) == sequence % 65_536


def test_rewritten_numbers_across_the_wrap_pack_in_order() -> None:
    rewriter = RtpRewriter(clock=lambda: 0.0)
    rewriter.rebase(65_530, 4_294_967_000, 90_000)
    sequences = []
    for step in range(12):
        numbers = rewriter.rewrite((65_530 + step) % 65_536, (4_294_967_000 + step * 3000) % 2**32)
        assert numbers is not None
        sequences.append(sequence_number(pack_rtp(96, False, *numbers, 1, b"x")))
    assert all((b - a) % 65_536 == 1 for a, b in zip(sequences, sequences[1:], strict=False))


def test_rtx_wraps_and_unwraps_a_packed_packet() -> None:
    original = aiortc_packet(sequence=65_535, payload=b"\x10\x00keyframe", padding_size=3)
    parsed = RtpPacket.parse(ours(original), extension_map())
    rtx = RtpPacket.parse(
        wrap_rtx(parsed, payload_type=97, sequence_number=0, ssrc=0x55).serialize(extension_map()),
        extension_map(),
    )
    assert rtx.payload[:2] == b"\xff\xff" and rtx.padding_size == 0
    assert rtx.extensions.mid == "2"
    restored = unwrap_rtx(rtx, payload_type=96, ssrc=0x1234ABCD)
    assert (restored.sequence_number, restored.payload) == (65_535, b"\x10\x00keyframe")


def test_ntp_time_and_abs_send_time() -> None:
    assert ntp_time(0.0) == 2_208_988_800 << 32
    assert ntp_time(0.5) & 0xFFFFFFFF == 1 << 31
    assert abs_send_time(ntp_time(1.0)) == ((2_208_988_801 << 18) & 0xFFFFFF).to_bytes(3, "big")


def test_extension_ids_from_negotiated_uris() -> None:
    ids = ExtensionIds.from_uris([(MID_URI, 9), ("urn:other", 2), (ABS_SEND_TIME_URI, 3)])
    assert ids == ExtensionIds(mid=9, abs_send_time=3, audio_level=None)


def as_aiortc_reads_it(data: bytes, level_id: int, abs_time_id: int = 3) -> tuple[object, ...]:
    packet = RtpPacket.parse(data, extension_map(abs_time=abs_time_id, level=level_id))
    return (
        bool(packet.marker),
        packet.payload_type,
        packet.sequence_number,
        packet.timestamp,
        packet.ssrc,
        packet.payload,
        packet.padding_size,
        packet.extensions.audio_level,
        packet.extensions.abs_send_time,
    )


@pytest.mark.parametrize(
    "data",
    [
        ours(aiortc_packet(level=(True, 42))),
        ours(aiortc_packet(level=(False, 127), payload=b"")),
        ours(aiortc_packet(level=None)),
        ours(aiortc_packet(level=(True, 3), padding_size=5)),
        ours(aiortc_packet(level=(True, 3)), ids=(1, 3, 4), mid=None),
        ours(aiortc_packet(level=(True, 9), mid="a-mid-longer-than-16-bytes")),  # two-byte form
        pack_rtp(111, False, 65535, 2**32 - 1, 1, b"opus"),  # no extensions at all
        pack_rtp(111, True, 0, 0, 1, b"", padding_size=200),  # padding only
    ],
)
def test_reads_packets_as_aiortc_does(data: bytes) -> None:
    assert tuple(read_rtp(data, 4, 3)) == as_aiortc_reads_it(data, 4)


def test_reads_past_csrcs_and_two_byte_ids_above_14() -> None:
    block = pack_extensions([(16, b"\x01\x02\x03"), (4, bytes((0x80 | 25,)))])
    header = pack_rtp(111, False, 9, 960, 77, b"", block)
    # Insert two CSRCs after the fixed header and set the CSRC count.
    data = bytes((header[0] | 2,)) + header[1:12] + bytes(8) + header[12:] + b"opus"
    read = read_rtp(data, 4, 16)
    assert read.payload == b"opus"
    assert read.audio_level == (True, 25)
    assert read.abs_send_time == 0x010203
    assert tuple(read) == as_aiortc_reads_it(data, 4, 16)


def test_extensions_not_read_without_their_ids() -> None:
    data = ours(aiortc_packet(level=(True, 42)))
    assert read_rtp(data, 4, 3).abs_send_time == (NTP >> 14) & 0xFFFFFF
    assert read_rtp(data, None).audio_level is None
    assert read_rtp(data, None).abs_send_time is None
    assert read_rtp(data, 9, 10).audio_level is None  # ids not in the packet
    assert read_rtp(data, 9, 10).abs_send_time is None


@pytest.mark.parametrize(
    "data",
    [
        b"\x80\x6f\x00",  # shorter than the fixed header
        b"\x40" + pack_rtp(111, False, 1, 1, 1, b"x")[1:],  # version 1
        bytes((0x83,)) + pack_rtp(111, False, 1, 1, 1, b"")[1:] + bytes(8),  # 3 CSRCs, room for 2
        pack_rtp(111, False, 1, 1, 1, b"", pack_extensions([(4, b"\x01")]))[:14],
        pack_rtp(111, False, 1, 1, 1, b"", pack_extensions([(4, b"\x01")]))[:18],
        bytes((0xA0,)) + pack_rtp(111, False, 1, 1, 1, b"ab")[1:-1] + b"\x00",  # padding 0
        bytes((0xA0,)) + pack_rtp(111, False, 1, 1, 1, b"ab")[1:-1] + b"\x09",  # over payload
    ],
)
def test_malformed_packets_refused_like_aiortc(data: bytes) -> None:
    with pytest.raises(ValueError):
        RtpPacket.parse(data, extension_map())
    with pytest.raises(ValueError):
        read_rtp(data, 4)
