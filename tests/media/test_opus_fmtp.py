"""The server's SDP asks for Opus in-band FEC and DTX on every audio m-section, both legs."""

from __future__ import annotations

from aiortc.sdp import MediaDescription, SessionDescription

from tests.media.clients import ClientPeer, assert_see_and_hear_each_other
from tests.media.conftest import Room


def opus_parameters(media: MediaDescription) -> dict[str, object]:
    opus = [c for c in media.rtp.codecs if c.mimeType.lower() == "audio/opus"]
    assert opus, f"m-section {media.rtp.muxId} offers no Opus"
    return {k: str(v) for k, v in opus[0].parameters.items()}


async def test_answers_and_offers_carry_opus_fec_and_dtx(room: Room) -> None:
    outlet = await room.join(ClientPeer("outlet-1", rgb=(220, 40, 40), hz=440))
    doctor = await room.join(ClientPeer("dr-li", rgb=(30, 60, 220), hz=1000))
    await assert_see_and_hear_each_other(outlet, doctor)

    for client in (outlet, doctor):
        # The publisher leg (the server's answer to the client's offer) and the subscriber leg
        # (the server's offers adding the other participant's tracks).
        assert client.server_answers and client.server_offers, client.participant_id
        for sdp in (*client.server_answers, *client.server_offers):
            audio = [m for m in SessionDescription.parse(sdp).media if m.kind == "audio"]
            assert audio
            for media in audio:
                parameters = opus_parameters(media)
                assert parameters.get("useinbandfec") == "1", (media.rtp.muxId, parameters)
                assert parameters.get("usedtx") == "1", (media.rtp.muxId, parameters)
        # One payload type for Opus across the BUNDLE group, publishing and receiving alike.
        applied = SessionDescription.parse(client.pc.remoteDescription.sdp)
        opus_types = {
            c.payloadType
            for m in applied.media
            if m.kind == "audio"
            for c in m.rtp.codecs
            if c.mimeType.lower() == "audio/opus"
        }
        assert len(opus_types) == 1, opus_types
