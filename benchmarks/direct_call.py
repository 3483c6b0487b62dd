"""Chromium pages calling each other directly (no server), for ``bench weaklink``.

Each page opens its camera and microphone the way the app's pages do, then any number of
page-to-page peer connections, one per peer, whose media shows in a tile named after the
peer (``[data-participant="<peer>"] video``, like the app's tiles). A connection's answerer can
sit behind a :class:`~benchmarks.link_emulator.LinkEmulator`; otherwise only loopback candidates
are exchanged.
"""

from __future__ import annotations

from playwright.async_api import Browser, ViewportSize

from benchmarks.browser_call import PageHandle, Site, open_page
from benchmarks.link_emulator import LinkEmulator, loopback_sdp

# One page's camera and microphone, opened once for all its direct connections.
_DIRECT_CAMERA = """
async () => {
  window.directStream = await navigator.mediaDevices.getUserMedia({
    audio: {echoCancellation: true, noiseSuppression: true, autoGainControl: true},
    video: {width: {ideal: 640}, height: {ideal: 480}, frameRate: {ideal: 24, max: 30}},
  });
  window.directPeers = {};
}
"""

# One step of a direct connection to ``peer``, whose media shows in a tile named after it.
# Candidates travel in the SDP: wait for gathering (host candidates only, so it is quick).
_DIRECT_PEER = """
async ({peer, type, sdp}) => {
  let pc = window.directPeers[peer];
  if (!pc) {
    pc = new RTCPeerConnection({bundlePolicy: "max-bundle"});
    const stream = window.directStream;
    for (const track of stream.getTracks()) pc.addTrack(track, stream);
    pc.addEventListener("track", (event) => {
      let box = document.querySelector(`[data-participant="${peer}"]`);
      if (!box) {
        box = document.createElement("div");
        box.dataset.participant = peer;
        const video = document.createElement("video");
        video.autoplay = true;
        box.append(video);
        document.body.append(box);
      }
      box.querySelector("video").srcObject = event.streams[0];
    });
    window.directPeers[peer] = pc;
  }
  if (sdp) await pc.setRemoteDescription({type: type === "answer" ? "offer" : "answer", sdp});
  if (type === "accept") return null;
  await pc.setLocalDescription(type === "offer" ? await pc.createOffer() : await pc.createAnswer());
  if (pc.iceGatheringState !== "complete") {
    await new Promise((resolve) => {
      pc.addEventListener("icegatheringstatechange", () => {
        if (pc.iceGatheringState === "complete") resolve();
      });
      setTimeout(resolve, 5000);
    });
  }
  return pc.localDescription.sdp;
}
"""


async def open_direct(
    browser: Browser, role: str, site: Site, viewport: ViewportSize
) -> PageHandle:
    """A page of the app's origin with its camera open, ready for direct connections."""
    handle = await open_page(browser, role, f"{site.url}/healthz", viewport)
    await handle.page.evaluate(_DIRECT_CAMERA)
    return handle


async def connect_direct(
    offerer: tuple[str, PageHandle],
    answerer: tuple[str, PageHandle],
    link: LinkEmulator | None,
) -> None:
    """Connect two direct pages; the answerer behind ``link`` if given, else loopback only."""
    (offer_role, offer_page), (answer_role, answer_page) = offerer, answerer
    offer = await offer_page.page.evaluate(
        _DIRECT_PEER, {"peer": answer_role, "type": "offer", "sdp": None}
    )
    answer = await answer_page.page.evaluate(
        _DIRECT_PEER,
        {
            "peer": offer_role,
            "type": "answer",
            "sdp": link.server_sdp(offer) if link else loopback_sdp(offer),
        },
    )
    await offer_page.page.evaluate(
        _DIRECT_PEER,
        {
            "peer": answer_role,
            "type": "accept",
            "sdp": link.participant_sdp(answer) if link else loopback_sdp(answer),
        },
    )
