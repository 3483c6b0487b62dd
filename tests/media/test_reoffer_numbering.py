"""Server re-offers keep the payload types and header-extension ids a browser negotiated first.

The first participant numbers its offer the way Chrome does (Opus 111, VP8 96 with RTX 97,
audio level 1, abs-send-time 2, mid 4), not aiortc's defaults. When a second participant joins,
the server re-offers to the first; JSEP requires the existing m-sections to keep their numbers,
and new ones must not give a number already in use in the BUNDLE group another meaning.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiortc.codecs import CODECS, HEADER_EXTENSIONS
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpHeaderExtensionParameters
from aiortc.sdp import MediaDescription, SessionDescription

from media.sdp_numbering import OPUS_FMTP, BundleNumbering
from tests.media.clients import (
    ClientPeer,
    assert_see_and_hear_each_other,
    renumber_sdp,
)
from tests.media.conftest import Room

RED = (220, 40, 40)
BLUE = (30, 60, 220)

CHROME_PAYLOAD_TYPES = {
    "audio": {96: 111},
    "video": {97: 96, 98: 97, 99: 102, 100: 103, 101: 106, 102: 107},
}
MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
CHROME_EXTENSION_IDS = {AUDIO_LEVEL: 1, ABS_SEND_TIME: 2, MID: 4}


def chrome_numbering(sdp: str) -> str:
    return renumber_sdp(sdp, CHROME_PAYLOAD_TYPES, CHROME_EXTENSION_IDS)


def codec_key(codec: RTCRtpCodecParameters) -> tuple[object, ...]:
    """What a payload type means; the Opus options the server asks for do not change that."""
    parameters = {k: v for k, v in codec.parameters.items() if k not in OPUS_FMTP}
    return (codec.mimeType.lower(), codec.clockRate, sorted(parameters.items()))


def numbering(media: MediaDescription) -> tuple[dict[int, str], dict[int, str]]:
    """Payload type -> codec (RTX with its apt) and extension id -> uri of one m-section."""
    codecs = {
        c.payloadType: repr(codec_key(c)) for c in media.rtp.codecs if c.payloadType is not None
    }
    extensions = {e.id: e.uri for e in media.rtp.headerExtensions}
    return codecs, extensions


def assert_bundle_consistent(description: SessionDescription) -> None:
    """No payload type or extension id means two different things across the offer."""
    meaning_of_pt: dict[int, str] = {}
    meaning_of_id: dict[int, str] = {}
    for media in description.media:
        codecs, extensions = numbering(media)
        for pt, key in codecs.items():
            assert meaning_of_pt.setdefault(pt, key) == key, f"PT {pt} clashes in mid {media}"
        for ext_id, uri in extensions.items():
            assert meaning_of_id.setdefault(ext_id, uri) == uri, f"extension id {ext_id} clashes"


async def wait_until_server_receives(
    room: Room, participant_id: str, within_s: float = 15.0
) -> None:
    """Until every track of the participant has packets at the server: its senders run."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    receivers = [r for _, r in room.router.peer(participant_id).receivers()]
    while loop.time() < deadline:
        counts = []
        for receiver in receivers:
            report = await receiver.getStats()
            counts.append(
                sum(s.packetsReceived for s in report.values() if s.type == "inbound-rtp")
            )
        if receivers and all(counts):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the server got no media from {participant_id} within {within_s}s")


async def test_reoffer_keeps_browser_numbering_and_media_flows(
    room: Room, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    outlet = await room.join(ClientPeer("outlet-1", rgb=RED, hz=440, munge_offer=chrome_numbering))
    first_offer = SessionDescription.parse(outlet.pc.localDescription.sdp)
    first = {m.rtp.muxId: numbering(m) for m in first_offer.media}
    assert {pt for codecs, _ in first.values() for pt in codecs} >= {111, 96, 97}
    # As with a browser, the first participant is connected and sending long before others join.
    await wait_until_server_receives(room, "outlet-1")

    doctor = await room.join(ClientPeer("dr-li", rgb=BLUE, hz=1000))

    await assert_see_and_hear_each_other(outlet, doctor)

    assert outlet.server_offers, "the server never re-offered to the first participant"
    for sdp in outlet.server_offers:
        reoffer = SessionDescription.parse(sdp)
        by_mid = {m.rtp.muxId: m for m in reoffer.media}
        assert set(first) <= set(by_mid)
        for mid, (codecs, extensions) in first.items():
            kept_codecs, kept_extensions = numbering(by_mid[mid])
            assert kept_codecs, f"mid {mid} lost its codecs"
            for pt, key in kept_codecs.items():
                assert codecs.get(pt) == key, f"mid {mid}: PT {pt} was renumbered"
            assert kept_extensions == extensions, f"mid {mid}: extension ids changed"
        audio = next(m for m in reoffer.media if m.rtp.muxId in first and m.kind == "audio")
        assert audio.rtp.codecs[0].payloadType == 111
        video = next(m for m in reoffer.media if m.rtp.muxId in first and m.kind == "video")
        assert video.rtp.codecs[0].payloadType == 96
        new = [m for m in reoffer.media if m.rtp.muxId not in first]
        assert {m.kind for m in new} == {"audio", "video"}
        assert_bundle_consistent(reoffer)

    for _, receiver in room.router.peer("outlet-1").receivers():
        if receiver.codec_for(111) is not None:
            assert receiver.codec_for(111).mimeType.lower() == "audio/opus"  # type: ignore[union-attr]
    problems = [r for r in caplog.records if r.levelno >= logging.ERROR or "Traceback" in r.message]
    assert problems == [], [r.getMessage()[:300] for r in problems]


def test_new_sections_reuse_numbers_and_avoid_clashes() -> None:
    numbering = BundleNumbering()
    vp8, h264_baseline = CODECS["video"][0], CODECS["video"][4]  # aiortc's 97 and 101
    numbering.reserve(
        [
            RTCRtpCodecParameters(vp8.mimeType, vp8.clockRate, payloadType=100),
            RTCRtpCodecParameters(
                h264_baseline.mimeType,
                h264_baseline.clockRate,
                payloadType=97,
                parameters=dict(h264_baseline.parameters),
            ),
        ],
        [RTCRtpHeaderExtensionParameters(id=3, uri=MID)],
    )

    codecs = numbering.codecs_for(CODECS["video"][:4])  # VP8 97, RTX 98, H.264 99, RTX 100

    assert [(c.mimeType, c.payloadType, c.parameters.get("apt")) for c in codecs] == [
        ("video/VP8", 100, None),  # the number VP8 already has
        ("video/rtx", 98, 100),  # aiortc's default is free; apt follows VP8
        ("video/H264", 99, None),  # another profile than the 97 one: its own free default
        ("video/rtx", 96, 99),  # 100 means VP8 here: lowest free dynamic type
    ]
    assert CODECS["video"][0].payloadType == 97  # aiortc's defaults are left alone
    extensions = numbering.extensions_for(HEADER_EXTENSIONS["video"] + HEADER_EXTENSIONS["audio"])
    assert [(e.uri, e.id) for e in extensions] == [
        (MID, 3),
        (ABS_SEND_TIME, 1),  # aiortc's 3 is taken by mid
        (MID, 3),
        (AUDIO_LEVEL, 2),
    ]
