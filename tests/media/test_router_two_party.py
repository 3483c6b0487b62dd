"""Two real aiortc peers in one consultation exchange audio and video through the router."""

from __future__ import annotations

from tests.media.clients import (
    ClientPeer,
    assert_see_and_hear_each_other,
)
from tests.media.conftest import Room

RED = (220, 40, 40)
BLUE = (30, 60, 220)


async def test_two_parties_see_and_hear_each_other(room: Room) -> None:
    outlet = await room.join(ClientPeer("outlet-1", rgb=RED, hz=440))
    doctor = await room.join(ClientPeer("dr-li", rgb=BLUE, hz=1000))

    await assert_see_and_hear_each_other(outlet, doctor)

    labels = {t["track_id"]: t for t in doctor.tracks_events[-1]}
    assert labels["outlet-1:camera"]["kind"] == "video"
    assert labels["outlet-1:microphone"]["source"] == "microphone"
