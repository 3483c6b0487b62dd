// One RTCPeerConnection with the server's SFU for one consultation (see docs/protocol.md, Media).
// The client makes the first offer with its own tracks; the server re-offers when others' tracks
// come and go. The client is the polite peer: a refused or colliding offer is rolled back and
// sent again once the server's negotiation is done.

// ICE servers and transport policy come from an IceConfig (ice.js); when the server renews the
// TURN credentials, a call on a relayed path restarts ICE so new allocations use them.

import { Api } from "./api.js";

// The camera is sent as VP8 with temporal layers where the browser can (L1T3, else L1T2): the
// server forwards each participant the layers its link carries, so a weak link gets fewer
// frames instead of a pause (media/layer_rewriter.py). Firefox and older browsers send none.
const TEMPORAL_MODES = ["L1T3", "L1T2"];
const RETRY_DELAY_MS = 300;
const MAX_OFFER_RETRIES = 20;
const PATH_CHECK_MS = 5000;

export class MediaSession extends EventTarget {
  constructor({ signal, consultationId, ice, localStream, receiveVideo = true }) {
    super();
    this.receiveVideo = receiveVideo;
    this.signal = signal;
    this.api = new Api(signal);
    this.consultationId = consultationId;
    this.ice = ice;
    this.localStream = localStream;
    this.screenTrack = null;
    this._screen = null;
    this.pc = null;
    this.remoteStreams = new Map();
    this.tracksInfo = [];
    this._chain = Promise.resolve();
    this._unsubscribe = [];
    this._closed = false;
    this._offerRetries = 0;
    this._retryTimer = null;
    this._pathTimer = null;
    this._heldCandidates = null;
    this._reportedPath = null;
    this._onRenewed = () => this.renewIce().catch((err) => this._warn("ICE renewal", err));
  }

  /** Open the peer connection and publish the local tracks. */
  start() {
    const own = (handler) => (payload) => {
      if (payload && payload.consultation_id === this.consultationId) handler(payload);
    };
    this._unsubscribe.push(
      this.signal.on("rtc.offer", own((p) => this._enqueue(() => this._answer(p.sdp)))),
      this.signal.on("rtc.candidate", own((p) => this._remoteCandidate(p.candidate))),
      this.signal.on("rtc.tracks", own((p) => this._tracks(p.tracks || []))),
      this.signal.on("rtc.link_state", own((p) => this._linkState(p))),
      // The consultation's media moved to another server node: start over with a fresh peer.
      this.signal.on("media.moved", own(() => this.restart())),
    );
    this.ice.addEventListener("renewed", this._onRenewed);
    this._pathTimer = setInterval(() => this._reportPath(), PATH_CHECK_MS);
    this._openPeer();
    this._enqueue(() => this._offer());
  }

  _openPeer() {
    const pc = new RTCPeerConnection(this.ice.rtcConfiguration());
    this.pc = pc;
    this._sources = new Map();
    for (const track of this.localStream ? this.localStream.getTracks() : []) {
      const init = { direction: "sendonly", streams: [this.localStream] };
      const transceiver =
        (track.kind === "video" && this._layeredTransceiver(pc, track, init)) ||
        pc.addTransceiver(track, init);
      this._sources.set(transceiver, track.kind === "audio" ? "microphone" : "camera");
    }
    this._screen = this.screenTrack ? this._addScreen(pc, this.screenTrack) : null;
    pc.addEventListener("icecandidate", (e) => {
      const candidate = e.candidate ? e.candidate.toJSON() : null;
      if (this._heldCandidates) this._heldCandidates.push(candidate);
      else this._sendCandidate(candidate);
    });
    pc.addEventListener("track", (e) => this._remoteTrack(e));
    pc.addEventListener("connectionstatechange", () => {
      this._emit("state", { state: pc.connectionState });
      if (pc.connectionState === "connected") this._reportPath();
      if (pc.connectionState === "failed" && !this._closed) this.restart();
    });
  }

  /** The camera's transceiver with VP8 temporal layers, or null where the browser has none. */
  _layeredTransceiver(pc, track, init) {
    for (const mode of temporalScalabilityModes()) {
      try {
        return pc.addTransceiver(track, { ...init, sendEncodings: [{ scalabilityMode: mode }] });
      } catch (err) {
        this._warn(`temporal layers ${mode}`, err);
      }
    }
    return null;
  }

  _enqueue(step) {
    this._chain = this._chain.then(step).catch((err) => this._warn("negotiation", err));
    return this._chain;
  }

  async _offer() {
    const pc = this.pc;
    if (this._closed || pc.signalingState !== "stable") return;
    // Candidates of a new ICE generation (first offer, ICE restart) wait for the answer: the
    // server starts the media session they belong to only when it takes the offer.
    this._heldCandidates = [];
    await pc.setLocalDescription(await pc.createOffer());
    const sources = [];
    for (const [transceiver, source] of this._sources) {
      if (transceiver.mid !== null) sources.push({ mid: transceiver.mid, source });
    }
    let answer;
    try {
      answer = await this.api.offer(this.consultationId, pc.localDescription.sdp, sources);
    } catch (err) {
      // A rolled-back offer's candidates are gathered again for the next one.
      this._heldCandidates = null;
      if (pc.signalingState === "have-local-offer") {
        await pc.setLocalDescription({ type: "rollback" });
      }
      this._retryOffer(err);
      return;
    }
    if (pc !== this.pc || pc.signalingState !== "have-local-offer") {
      // A server offer overtook ours and was answered: offer again from the new state.
      this._heldCandidates = null;
      this._retryOffer(null);
      return;
    }
    this._offerRetries = 0;
    const held = this._heldCandidates || [];
    this._heldCandidates = null;
    for (const candidate of held) this._sendCandidate(candidate);
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    await this._applyReceiveMode();
  }

  _sendCandidate(candidate) {
    this.api
      .candidate(this.consultationId, candidate)
      .catch((err) => this._warn("candidate", err));
  }

  _retryOffer(err) {
    const retriable = !err || ["negotiation_in_progress", "timeout", "invalid_state", "unavailable"].includes(err.code);
    if (!retriable || this._offerRetries >= MAX_OFFER_RETRIES || this._closed) {
      this._emit("error", { code: err ? err.code : "negotiation", message: err ? err.message : "" });
      return;
    }
    this._offerRetries += 1;
    clearTimeout(this._retryTimer);
    this._retryTimer = setTimeout(() => this._enqueue(() => this._offer()), RETRY_DELAY_MS);
  }

  async _answer(sdp) {
    const pc = this.pc;
    if (this._closed) return;
    if (pc.signalingState === "have-local-offer") {
      await pc.setLocalDescription({ type: "rollback" });
      this._retryOffer(null);
    }
    await pc.setRemoteDescription({ type: "offer", sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    await this.api.answer(this.consultationId, pc.localDescription.sdp);
    await this._applyReceiveMode();
  }

  async _remoteCandidate(candidate) {
    if (!this.pc || !candidate) return;
    try {
      await this.pc.addIceCandidate(candidate);
    } catch (err) {
      this._warn("remote candidate", err);
    }
  }

  _remoteTrack(event) {
    const stream = event.streams[0];
    if (!stream) return;
    const participantId = stream.id;
    const known = this.remoteStreams.get(participantId);
    if (known !== stream) {
      this.remoteStreams.set(participantId, stream);
      stream.addEventListener("removetrack", () => {
        if (stream.getTracks().length === 0) {
          this.remoteStreams.delete(participantId);
          this._emit("streamremoved", { participantId });
        }
      });
    }
    this._emit("stream", { participantId, stream, info: this._infoFor(participantId) });
  }

  _tracks(tracks) {
    this.tracksInfo = tracks;
    const present = new Set(tracks.map((t) => t.participant_id));
    for (const participantId of [...this.remoteStreams.keys()]) {
      if (!present.has(participantId)) {
        this.remoteStreams.delete(participantId);
        this._emit("streamremoved", { participantId });
      }
    }
    this._emit("tracks", { tracks });
  }

  _linkState(payload) {
    this._emit("linkstate", {
      videoPaused: Boolean(payload.video_paused),
      reason: payload.reason ?? null,
      estimateKbps: payload.estimate_kbps ?? null,
    });
  }

  _infoFor(participantId) {
    return this.tracksInfo.filter((t) => t.participant_id === participantId);
  }

  _addScreen(pc, track) {
    const transceiver = pc.addTransceiver(track, { direction: "sendonly" });
    this._sources.set(transceiver, "screen");
    return transceiver;
  }

  /**
   * Share a screen as a second video track. The first share adds an m-line (one renegotiation);
   * later ones reuse it with replaceTrack, so stopping and starting again needs none.
   */
  async shareScreen(track) {
    this.screenTrack = track;
    if (this._screen) {
      await this._screen.sender.replaceTrack(track);
    } else if (this.pc) {
      this._screen = this._addScreen(this.pc, track);
      await this._enqueue(() => this._offer());
    }
    await this.api.setMediaState(this.consultationId, "screen", false).catch((err) => this._warn("media state", err));
  }

  /** Stop sending the screen; the others hear `rtc.media_state` (screen muted) and hide it. */
  async stopScreen() {
    this.screenTrack = null;
    if (this._screen) await this._screen.sender.replaceTrack(null);
    await this.api.setMediaState(this.consultationId, "screen", true).catch((err) => this._warn("media state", err));
  }

  /** Mute or unmute a local source and tell the others. */
  setMuted(kind, muted) {
    if (!this.localStream) return;
    for (const track of this.localStream.getTracks()) {
      if (track.kind === kind) track.enabled = !muted;
    }
    const source = kind === "audio" ? "microphone" : "camera";
    this.api
      .setMediaState(this.consultationId, source, muted)
      .catch((err) => this._warn("media state", err));
  }

  /** Receive audio only (weak link) or audio and video; kept across renegotiations. */
  setReceiveVideo(video) {
    this.receiveVideo = video;
    return this._applyReceiveMode(true);
  }

  async _applyReceiveMode(always = false) {
    // Subscriptions are made during negotiation: repeat the choice so new ones follow it too.
    if (this.receiveVideo && !always) return;
    await this.api
      .setReceiveMode(this.consultationId, this.receiveVideo)
      .catch((err) => this._warn("receive mode", err));
  }

  /**
   * Take renewed TURN credentials. A relayed call restarts ICE so that its new allocation on
   * the TURN server uses them (the old allocation stops being refreshed once they expire).
   */
  async renewIce() {
    const pc = this.pc;
    if (this._closed || !pc) return;
    pc.setConfiguration(this.ice.rtcConfiguration());
    const path = await this.path();
    if (path && path.candidateType === "relay") {
      console.info("ICE restart with renewed TURN credentials");
      this._emit("state", { state: "ice-restart" });
      // restartIce() keeps asking for new ICE credentials until an offer with them is
      // answered, so a retried offer (negotiation_in_progress) still restarts.
      pc.restartIce();
      await this._enqueue(() => this._offer());
      // The server starts a new media session for the new ICE credentials: report again.
      this._reportedPath = null;
    }
  }

  /** The selected candidate pair's local side: {candidateType, protocol, relayProtocol}. */
  async path() {
    if (!this.pc || this.pc.connectionState !== "connected") return null;
    const report = await this.pc.getStats();
    let pairId = null;
    report.forEach((s) => {
      if (s.type === "transport" && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
    });
    const pair = pairId && report.get(pairId);
    const local = pair && report.get(pair.localCandidateId);
    if (!local) return null;
    return {
      candidateType: local.candidateType,
      protocol: local.protocol,
      relayProtocol: local.candidateType === "relay" ? local.relayProtocol || null : null,
    };
  }

  /** Tell the server which path this call takes (rtc.path), whenever it changes. */
  async _reportPath() {
    let path;
    try {
      path = await this.path();
    } catch (err) {
      return;
    }
    const key = path && `${path.candidateType}/${path.protocol}/${path.relayProtocol}`;
    if (!path || key === this._reportedPath || this._closed) return;
    this._reportedPath = key;
    this._emit("path", path);
    this.api
      .reportPath(this.consultationId, path)
      .catch((err) => {
        this._reportedPath = null;
        this._warn("path report", err);
      });
  }

  /** Tear the peer connection down and publish again (ICE failure, rejoin after a drop). */
  restart() {
    if (this._closed) return;
    this._emit("state", { state: "reconnecting" });
    clearTimeout(this._retryTimer);
    this._closePeer();
    this._offerRetries = 0;
    this._reportedPath = null;
    this._openPeer();
    this._enqueue(() => this._offer());
  }

  _closePeer() {
    if (!this.pc) return;
    this.pc.close();
    for (const participantId of this.remoteStreams.keys()) {
      this._emit("streamremoved", { participantId });
    }
    this.remoteStreams.clear();
  }

  /** Own link quality from the browser's stats: round trip, loss and bitrates. */
  async quality() {
    if (!this.pc) return null;
    const report = await this.pc.getStats();
    const now = performance.now();
    let rttMs = null;
    let bytesSent = 0;
    let bytesReceived = 0;
    let packetsLost = 0;
    let packetsReceived = 0;
    report.forEach((s) => {
      if (s.type === "candidate-pair" && s.nominated && s.currentRoundTripTime !== undefined) {
        rttMs = s.currentRoundTripTime * 1000;
      }
      if (s.type === "outbound-rtp") bytesSent += s.bytesSent || 0;
      if (s.type === "inbound-rtp") {
        bytesReceived += s.bytesReceived || 0;
        packetsLost += s.packetsLost || 0;
        packetsReceived += s.packetsReceived || 0;
      }
    });
    const previous = this._lastQuality;
    this._lastQuality = { at: now, bytesSent, bytesReceived };
    const seconds = previous ? (now - previous.at) / 1000 : 0;
    return {
      rttMs,
      lossPct: packetsReceived + packetsLost > 0 ? (100 * packetsLost) / (packetsReceived + packetsLost) : 0,
      outKbps: seconds > 0 ? (8 * (bytesSent - previous.bytesSent)) / 1000 / seconds : null,
      inKbps: seconds > 0 ? (8 * (bytesReceived - previous.bytesReceived)) / 1000 / seconds : null,
    };
  }

  close() {
    if (this._closed) return;
    this._closed = true;
    clearTimeout(this._retryTimer);
    clearInterval(this._pathTimer);
    this.ice.removeEventListener("renewed", this._onRenewed);
    for (const unsubscribe of this._unsubscribe) unsubscribe();
    this._closePeer();
    this._linkState({ video_paused: false });
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  _warn(what, err) {
    console.warn(`media ${what} failed`, err && (err.code || err.message || err));
  }
}

/**
 * The VP8 temporal scalability modes to try, best first: those the browser lists for VP8, or all
 * of them when it lists none (Chromium takes them without listing them; a browser that cannot
 * send a mode refuses it in addTransceiver, and one that does not know the setting ignores it).
 */
export function temporalScalabilityModes() {
  const capabilities =
    typeof RTCRtpSender !== "undefined" && RTCRtpSender.getCapabilities
      ? RTCRtpSender.getCapabilities("video")
      : null;
  const vp8 = ((capabilities && capabilities.codecs) || []).filter(
    (codec) => (codec.mimeType || "").toLowerCase() === "video/vp8",
  );
  const listing = vp8.filter((codec) => Array.isArray(codec.scalabilityModes));
  if (vp8.length === 0) return [];
  if (listing.length === 0) return TEMPORAL_MODES;
  return TEMPORAL_MODES.filter((mode) =>
    listing.some((codec) => codec.scalabilityModes.includes(mode)),
  );
}
