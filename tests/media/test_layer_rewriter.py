"""One subscriber's VP8 temporal layer: which pictures pass, where the layer switches, and the
numbers the subscriber sees (sequence numbers contiguous, picture ids counting only the pictures
it gets, TL0PICIDX continuous) through switches, loss, reordering, resends and wraparound."""

from __future__ import annotations

import random

import pytest

from media.layer_rewriter import MAX_LAYER, PICTURE_MEMORY, RUN_MEMORY, LayerNumbers, LayerRewriter
from media.vp8_descriptor import parse_vp8_descriptor
from tests.media.vp8_packets import L1T3_LAYERS, L1T3_SYNC, Packet, l1t3_stream, vp8_payload

Results = list[tuple[Packet, LayerNumbers | None]]


def feed(rewriter: LayerRewriter, packet: Packet) -> LayerNumbers | None:
    descriptor = parse_vp8_descriptor(packet.payload)
    assert descriptor is not None
    keyframe = descriptor.keyframe(packet.payload)
    if keyframe and not rewriter.started:
        rewriter.restart(packet.sequence, descriptor)
    return rewriter.admit(packet.sequence, packet.timestamp, packet.marker, descriptor, keyframe)


def run(
    packets: list[Packet], target: int = MAX_LAYER, targets: dict[int, int] | None = None
) -> Results:
    """Feed ``packets`` in order; ``targets``: the target set before the packet at that index."""
    rewriter = LayerRewriter()
    rewriter.target = target
    out = []
    for index, packet in enumerate(packets):
        if targets and index in targets:
            rewriter.target = targets[index]
        out.append((packet, feed(rewriter, packet)))
    return out


def forwarded(results: Results) -> list[tuple[Packet, LayerNumbers]]:
    return [(packet, numbers) for packet, numbers in results if numbers is not None]


def assert_continuous(results: Results) -> None:
    """What the subscriber gets has no hole: sequence numbers step by one, picture ids by one
    per picture, TL0PICIDX by one per base layer picture."""
    sent = forwarded(results)
    for (before, a), (after, b) in zip(sent, sent[1:], strict=False):
        assert b.sequence == (a.sequence + 1) % 65_536, (before, after)
        new_picture = after.picture != before.picture
        assert a.picture_id is not None and b.picture_id is not None
        assert b.picture_id == (a.picture_id + new_picture) % (1 << 15), (before, after)
        assert a.tl0_index is not None and b.tl0_index is not None
        step = 1 if new_picture and after.layer == 0 else 0
        assert b.tl0_index == (a.tl0_index + step) % 256, (before, after)


def pictures_of(results: Results) -> list[int]:
    return sorted({packet.picture for packet, _ in forwarded(results)})


def test_all_layers_pass_unchanged() -> None:
    packets = l1t3_stream(24)
    results = run(packets)
    for packet, numbers in results:
        descriptor = parse_vp8_descriptor(packet.payload)
        assert descriptor is not None
        assert numbers == LayerNumbers(packet.sequence, descriptor.picture_id, descriptor.tl0_index)


@pytest.mark.parametrize(
    ("target", "layers"),
    [(0, {0}), (1, {0, 1}), (2, {0, 1, 2}), (3, {0, 1, 2})],
)
def test_a_target_keeps_its_layers_and_squeezes_out_the_rest(target: int, layers: set[int]) -> None:
    results = run(l1t3_stream(32), target)
    assert {packet.layer for packet, _ in forwarded(results)} == layers
    assert pictures_of(results) == [i for i in range(32) if L1T3_LAYERS[i % 8] in layers]
    assert_continuous(results)
    first = forwarded(results)[0][1]
    assert first == LayerNumbers(1_000, 100, 10)  # the stream starts at the publisher's numbers


def test_down_switch_at_the_next_picture() -> None:
    packets = l1t3_stream(16, packets_per_picture=3)
    # the target drops to TL0 in the middle of picture 9 (a TL2 picture)
    results = run(packets, targets={9 * 3 + 1: 0})
    pictures = pictures_of(results)
    assert pictures == list(range(10)) + [12]
    # picture 9 was started, so it is finished
    assert sum(1 for packet, _ in forwarded(results) if packet.picture == 9) == 3
    assert_continuous(results)


def test_up_switch_one_layer_at_a_time_at_sync_pictures() -> None:
    packets = l1t3_stream(32)
    # from TL0 to TL2 at picture 3: TL1 syncs at picture 10 (Y), TL2 at picture 17 (Y)
    results = run(packets, 0, targets={6: 2})
    assert pictures_of(results) == [0, 4, 8, 10, 12, 14, *range(16, 32)]
    assert_continuous(results)


def test_a_sync_picture_two_layers_up_does_not_switch() -> None:
    """From TL0, a TL2 picture with Y is skipped: the TL1 pictures after it would not decode."""
    packets = l1t3_stream(16)
    results = run(packets, 0, targets={6: 2})  # from picture 3 on
    assert 9 not in pictures_of(results)  # picture 9: TL2 with Y, while TL1 has not synced
    assert 10 in pictures_of(results)  # picture 10: TL1 with Y


def test_no_up_switch_at_a_base_layer_picture() -> None:
    """A stream that never sets Y goes up only at a keyframe."""
    packets = [
        Packet(
            p.sequence,
            p.timestamp,
            p.marker,
            p.picture,
            p.layer,
            p.payload if p.picture % 8 not in (1, 2) else _without_sync(p.payload),
        )
        for p in l1t3_stream(24, keyframe_at=(0, 20))
    ]
    results = run(packets, 0, targets={2: 2})
    assert pictures_of(results) == [0, 4, 8, 12, 16] + list(range(20, 24))
    assert_continuous(results)


def _without_sync(payload: bytes) -> bytes:
    descriptor = parse_vp8_descriptor(payload)
    assert descriptor is not None
    at = descriptor.size - 1  # the TID/Y/KEYIDX byte
    return payload[:at] + bytes((payload[at] & ~0x20,)) + payload[at + 1 :]


def test_up_switch_at_a_keyframe_to_the_target_at_once() -> None:
    packets = l1t3_stream(16, keyframe_at=(0, 4))
    results = run(packets, 0, targets={6: 2})  # from picture 3 on
    assert pictures_of(results) == [0, *range(4, 16)]
    assert_continuous(results)


@pytest.mark.parametrize(
    ("sequence", "picture_id", "tl0"),
    [(65_530, 100, 10), (1_000, 32_760, 10), (1_000, 100, 253), (65_533, 32_763, 254)],
)
def test_numbers_wrap(sequence: int, picture_id: int, tl0: int) -> None:
    packets = l1t3_stream(40, sequence=sequence, picture_id=picture_id, tl0_index=tl0)
    results = run(packets, 1)
    assert_continuous(results)
    assert len(forwarded(results)) == 2 * 20


def test_seven_bit_picture_ids_wrap_at_128() -> None:
    packets = l1t3_stream(300, picture_id=120, long_picture_id=False)
    sent = forwarded(run(packets, 0))
    ids = [numbers.picture_id for _, numbers in sent[::2]]
    assert ids == [(120 + i) % 128 for i in range(len(ids))]


def test_layered_packets_without_picture_id_pass_with_squeezed_sequence() -> None:
    rewriter = LayerRewriter()
    rewriter.target = 0
    key = vp8_payload(None, 5, 0, keyframe=True)
    descriptor = parse_vp8_descriptor(key)
    assert descriptor is not None
    rewriter.restart(10, descriptor)
    assert rewriter.admit(10, 0, True, descriptor, True) == LayerNumbers(10, None, 5)
    upper = parse_vp8_descriptor(vp8_payload(None, 5, 1))
    assert upper is not None
    assert rewriter.admit(11, 3_000, True, upper) is None
    base = parse_vp8_descriptor(vp8_payload(None, 6, 0))
    assert base is not None
    assert rewriter.admit(12, 6_000, True, base) == LayerNumbers(11, None, 6)


def test_nothing_passes_before_the_start() -> None:
    packet = l1t3_stream(2, keyframe_at=())[0]
    descriptor = parse_vp8_descriptor(packet.payload)
    assert descriptor is not None
    assert LayerRewriter().admit(packet.sequence, packet.timestamp, False, descriptor) is None


def test_reordered_packets_of_a_forwarded_picture_keep_their_place() -> None:
    packets = l1t3_stream(12, packets_per_picture=3)
    order = list(range(len(packets)))
    order[13], order[14] = order[14], order[13]  # picture 4 (TL0), its 2nd and 3rd packets
    order[27], order[28] = order[28], order[27]  # picture 9 (TL2, dropped), likewise
    rewriter = LayerRewriter()
    rewriter.target = 1
    by_index = {i: feed(rewriter, packets[i]) for i in order}
    results = [(packets[i], by_index[i]) for i in range(len(packets))]
    assert_continuous(results)
    assert pictures_of(results) == [0, 2, 4, 6, 8, 10]


def test_a_resent_packet_of_a_dropped_layer_is_not_sent() -> None:
    packets = l1t3_stream(12, packets_per_picture=3)
    rewriter = LayerRewriter()
    rewriter.target = 1
    results = [(packet, feed(rewriter, packet)) for packet in packets]
    for packet in packets[3:30]:  # the publisher resends them (RTX after a NACK)
        again = feed(rewriter, packet)
        expected = dict((p.sequence, n) for p, n in results)[packet.sequence]
        assert again == expected, packet


def test_a_lost_packet_of_a_dropped_picture_leaves_no_hole() -> None:
    """Its picture is known from the packets around it: its number is squeezed out too."""
    packets = l1t3_stream(12, packets_per_picture=3)
    lost = {4, 5 * 3}  # in the middle of TL2 picture 1; the first of TL2 picture 5
    rewriter = LayerRewriter()
    rewriter.target = 0
    results = [(p, feed(rewriter, p)) for i, p in enumerate(packets) if i not in lost]
    assert_continuous(results)
    resent = [feed(rewriter, packets[i]) for i in sorted(lost)]
    assert resent == [None, None]


def test_a_lost_packet_of_a_forwarded_picture_is_resent_in_its_place() -> None:
    packets = l1t3_stream(12, packets_per_picture=3)
    rewriter = LayerRewriter()
    rewriter.target = 0
    results = [(p, feed(rewriter, p)) for i, p in enumerate(packets) if i != 13]
    late = feed(rewriter, packets[13])  # picture 4, the TL0 after picture 0
    assert late is not None
    assert late.sequence == (1_000 + 3 + 1) % 65_536
    assert_continuous(sorted([*results, (packets[13], late)], key=lambda r: r[0].sequence))


def test_a_whole_picture_lost_between_pictures_keeps_its_numbers() -> None:
    """Lost whole, a picture's layer is unknown: its numbers stay reserved (a hole if it was of
    a dropped layer and comes late)."""
    packets = l1t3_stream(8)
    rewriter = LayerRewriter()
    rewriter.target = 0
    out = [feed(rewriter, p) for i, p in enumerate(packets) if i not in (2, 3)]  # picture 1
    sent = [n for n in out if n is not None]
    assert [n.sequence for n in sent] == [1_000, 1_001, 1_004, 1_005]  # 1_002-3: reserved
    assert feed(rewriter, packets[2]) is None  # late, its picture older than the newest


def test_packets_too_old_to_place_are_dropped() -> None:
    packets = l1t3_stream(PICTURE_MEMORY + 2 * RUN_MEMORY + 16, packets_per_picture=1)
    rewriter = LayerRewriter()
    rewriter.target = 0
    for packet in packets:
        feed(rewriter, packet)
    assert feed(rewriter, packets[4]) is None  # a TL0 picture long gone from memory
    assert feed(rewriter, packets[-4]) is not None  # a recent TL0 picture


def test_a_restart_continues_picture_ids_and_tl0() -> None:
    first = l1t3_stream(9)  # up to picture 8, a TL0
    second = l1t3_stream(8, sequence=2_000, timestamp=7, picture_id=9_000, tl0_index=77)
    rewriter = LayerRewriter()
    rewriter.target = 1
    sent = [n for n in (feed(rewriter, p) for p in first) if n is not None]
    last = sent[-1]
    descriptor = parse_vp8_descriptor(second[0].payload)
    assert descriptor is not None
    rewriter.restart(second[0].sequence, descriptor)
    again = [n for n in (feed(rewriter, p) for p in second) if n is not None]
    assert last.picture_id is not None and last.tl0_index is not None
    assert again[0].picture_id == last.picture_id + 1
    assert again[0].tl0_index == last.tl0_index + 1
    assert again[0].sequence == 2_000  # the subscriber's offsets are RtpRewriter's job
    late = feed(rewriter, first[5])  # a straggler of the first stream
    assert late is None


def test_random_switches_keep_the_stream_decodable_and_continuous() -> None:
    """Targets changing at random over a long L1T3 stream with keyframes: no hole in what the
    subscriber gets, and every picture it gets decodes (a layer above TL0 only after that
    layer and every one below it synced since it last lost a picture)."""
    rng = random.Random(7)
    packets = l1t3_stream(
        2_000, sequence=60_000, picture_id=32_000, tl0_index=200, keyframe_at=(0, 700, 1_500)
    )
    targets = {i: rng.randrange(4) for i in range(0, len(packets), 37)}
    results = run(packets, targets=targets)
    assert_continuous(results)
    synced = {1: True, 2: True}
    got = {packet.picture for packet, _ in forwarded(results)}
    for index in range(2_000):
        layer = L1T3_LAYERS[index % 8]
        if index in (0, 700, 1_500):
            synced = {1: True, 2: True}
        if layer == 0:
            continue
        if index in got:
            assert L1T3_SYNC[index % 8] or all(synced[t] for t in range(1, layer + 1)), index
            if L1T3_SYNC[index % 8] and all(synced[t] for t in range(1, layer)):
                synced[layer] = True
        else:
            for t in range(layer, 3):
                synced[t] = False
    assert len(got) > 700  # the switches happened both ways, not everything dropped
