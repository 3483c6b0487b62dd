"""Two real aiortc peers in one consultation exchange audio and video through the router."""

from __future__ import annotations

from tests.media.clients import ClientPeer, dominant_hz, mean_rgb
from tests.media.conftest import Room

RED = (220, 40, 40)
BLUE = (30, 60, 220)


def close_to(
    actual: tuple[int, int, int], expected: tuple[int, int, int], tolerance: int = 45
) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


async def test_two_parties_see_and_hear_each_other(room: Room) -> None:
    outlet = await room.join(ClientPeer("outlet-1", rgb=RED, hz=440))
    doctor = await room.join(ClientPeer("dr-li", rgb=BLUE, hz=1000))

    at_doctor = await doctor.wait_for("outlet-1", "video")
    at_outlet = await outlet.wait_for("dr-li", "video")
    assert close_to(mean_rgb(at_doctor.frames[-1]), RED)
    assert close_to(mean_rgb(at_outlet.frames[-1]), BLUE)

    heard_by_doctor = await doctor.wait_for("outlet-1", "audio", frames=25)
    heard_by_outlet = await outlet.wait_for("dr-li", "audio", frames=25)
    assert abs(dominant_hz(heard_by_doctor.frames[-20:]) - 440) < 30
    assert abs(dominant_hz(heard_by_outlet.frames[-20:]) - 1000) < 30

    labels = {t["track_id"]: t for t in doctor.tracks_events[-1]}
    assert labels["outlet-1:camera"]["kind"] == "video"
    assert labels["outlet-1:microphone"]["source"] == "microphone"
