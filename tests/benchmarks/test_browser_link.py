"""Socket.IO frames of one page rewritten for the link emulator, and figures read from samples."""

from __future__ import annotations

import json

from benchmarks.browser_link import SignallingRewriter
from benchmarks.link_emulator import LinkEmulator
from benchmarks.receive_figures import Sample, fps_per_second, longest_stall_s

SDP = "v=0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 {port} typ host\r\n"


def event(ack_id: str, name: str, body: dict[str, object]) -> str:
    return f"42{ack_id}" + json.dumps([name, body])


async def test_page_offer_and_its_answer_point_at_the_relay() -> None:
    async with LinkEmulator() as link:
        rewriter = SignallingRewriter(link)
        outgoing, reply = rewriter.from_page(
            event("7", "rtc.offer", {"consultation_id": "c", "sdp": SDP.format(port=5000)})
        )
        assert reply is None and outgoing is not None and outgoing.startswith("427[")
        relay_port = link.participant_ports()[("127.0.0.1", 5000)]
        assert json.loads(outgoing[3:])[1]["sdp"] == SDP.format(port=relay_port)

        ack = "437" + json.dumps([{"ok": {"sdp": SDP.format(port=6000)}}])
        rewritten = rewriter.from_server(ack)
        assert rewritten is not None
        server_port = link.server_ports()[("127.0.0.1", 6000)]
        assert json.loads(rewritten[3:])[0]["ok"]["sdp"] == SDP.format(port=server_port)
        # Another ack with the same id is not an answer to an offer any more.
        assert rewriter.from_server(ack) == ack
        assert rewriter.rewritten_sdps == 2


async def test_candidates_that_would_bypass_the_link_never_reach_the_server() -> None:
    async with LinkEmulator() as link:
        rewriter = SignallingRewriter(link)
        tcp = {"candidate": "candidate:2 1 tcp 1518280447 127.0.0.1 9 typ host", "sdpMid": "0"}
        outgoing, reply = rewriter.from_page(
            event("12", "rtc.candidate", {"consultation_id": "c", "candidate": tcp})
        )
        assert outgoing is None
        assert reply == "4312" + json.dumps([{"ok": True}])
        udp = {"candidate": "candidate:3 1 udp 2122194687 127.0.0.1 5001 typ host", "sdpMid": "0"}
        outgoing, reply = rewriter.from_page(
            event("13", "rtc.candidate", {"consultation_id": "c", "candidate": udp})
        )
        assert reply is None and outgoing is not None
        port = link.participant_ports()[("127.0.0.1", 5001)]
        assert json.loads(outgoing[4:])[1]["candidate"]["candidate"].endswith(
            f"127.0.0.1 {port} typ host"
        )
        end = event("14", "rtc.candidate", {"consultation_id": "c", "candidate": None})
        assert rewriter.from_page(end) == (end, None)
        assert (rewriter.candidates_to_server, rewriter.candidates_dropped) == (1, 1)


async def test_other_frames_pass_unchanged() -> None:
    async with LinkEmulator() as link:
        rewriter = SignallingRewriter(link)
        for frame in ("2", "3", "40", event("", "consultation.join", {"consultation_id": "c"})):
            assert rewriter.from_page(frame) == (frame, None)
            assert rewriter.from_server(frame) == frame


def samples(frames_at: list[tuple[float, int]]) -> list[Sample]:
    return [Sample(at, {"video": {"frames": frames}}) for at, frames in frames_at]


def test_fps_and_stalls_from_cumulative_frame_counts() -> None:
    series = samples([(0.0, 0), (0.5, 10), (1.0, 20), (1.5, 20), (2.0, 20), (2.5, 20), (3.0, 30)])
    assert fps_per_second(series) == [20.0, 0.0, 10.0]
    # New frames seen at 1.0 s and then only at 3.0 s.
    assert longest_stall_s(series) == 2.0
    assert longest_stall_s(series[:3]) == 0.5
    assert longest_stall_s(samples([(0.0, 5), (0.5, 5), (1.0, 5)])) == 1.0
