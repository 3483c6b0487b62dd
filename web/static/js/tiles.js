// Video tiles of the other participants: one <figure> per participant, labelled with name, role,
// mute state and (for clinicians) link quality.

import { $, el, playStream } from "./ui.js";

const RECONNECTING_STATES = ["disconnected", "failed", "reconnecting"];

/** Show a MediaSession's remote streams as tiles, and its reconnecting state on the call screen. */
export function showCallMedia(media, tiles) {
  media.addEventListener("stream", (e) => {
    tiles.show(e.detail.participantId, e.detail.stream);
    $("#call-waiting").hidden = true;
  });
  media.addEventListener("streamremoved", (e) => tiles.remove(e.detail.participantId));
  media.addEventListener("state", (e) => {
    $("#reconnecting").hidden = !RECONNECTING_STATES.includes(e.detail.state);
  });
  media.addEventListener("linkstate", (e) => showLinkNotice(e.detail.videoPaused, tiles));
}

// The notice is a live region that stays in the page: its text appearing is what gets announced.
function showLinkNotice(videoPaused, tiles) {
  const notice = $("#link-notice");
  if (videoPaused) {
    notice.dataset.i18n = "call.video_paused";
    notice.textContent = tiles.t("call.video_paused");
  } else {
    delete notice.dataset.i18n;
    notice.textContent = "";
  }
  tiles.container.classList.toggle("video-paused", videoPaused);
}

/**
 * The path a participant's call takes (docs/protocol.md, rtc.stats): the browser's own report
 * when there is one (it knows how it reaches the TURN server), else what the server sees.
 */
function callPath(stats) {
  if (stats.client_candidate_type) {
    return {
      type: stats.client_candidate_type,
      protocol: stats.client_relay_protocol || stats.client_protocol || "",
    };
  }
  if (stats.candidate_type) return { type: stats.candidate_type, protocol: stats.candidate_protocol || "" };
  return null;
}

export class Tiles {
  constructor(container, { t, onAutoplayBlocked, mainRoles = [] }) {
    this.container = container;
    this.t = t;
    this.onAutoplayBlocked = onAutoplayBlocked;
    this.mainRoles = mainRoles;
    this.tiles = new Map();
    this.people = new Map();
  }

  /** Names and roles from the consultation's participant list. */
  setParticipants(participants) {
    this.people = new Map(participants.map((p) => [p.participant_id, p]));
    for (const [id, tile] of this.tiles) this._label(id, tile);
    this._layout();
  }

  show(participantId, stream) {
    let tile = this.tiles.get(participantId);
    if (!tile) {
      const video = el("video", { autoplay: true, playsinline: true });
      const name = el("span", { class: "tile-name" });
      const flags = el("span", { class: "tile-flags" });
      const quality = el("span", { class: "tile-quality", "aria-live": "off" });
      const path = el("span", { class: "tile-path", "aria-live": "off" });
      // Shown instead of a black picture when this side receives sound only (weak link).
      const voice = el("p", { class: "tile-voice", "data-i18n": "call.voice_only" }, this.t("call.voice_only"));
      tile = {
        figure: el("figure", { class: "tile", dataset: { participant: participantId } }, video, voice,
          el("figcaption", {}, name, flags, quality, path)),
        video, name, flags, quality, path, muted: new Set(),
      };
      this.tiles.set(participantId, tile);
      this.container.append(tile.figure);
      this._label(participantId, tile);
    }
    playStream(tile.video, stream, this.onAutoplayBlocked);
    this._layout();
  }

  remove(participantId) {
    const tile = this.tiles.get(participantId);
    if (!tile) return;
    tile.video.srcObject = null;
    tile.figure.remove();
    this.tiles.delete(participantId);
    this._layout();
  }

  clear() {
    for (const id of [...this.tiles.keys()]) this.remove(id);
  }

  setMediaState(participantId, source, muted) {
    const tile = this.tiles.get(participantId);
    if (!tile) return;
    if (muted) tile.muted.add(source);
    else tile.muted.delete(source);
    this._label(participantId, tile);
  }

  setQuality(participantId, stats) {
    const tile = this.tiles.get(participantId);
    if (!tile) return;
    const figure = (value, digits = 0) => (value === null || value === undefined ? "–" : Number(value).toFixed(digits));
    const parts = [
      this.t("quality.line", {
        rtt: figure(stats.rtt_ms),
        loss: figure(stats.loss_pct, 1),
        kbps: figure(stats.inbound_kbps),
      }),
      this.t("quality.estimate", { kbps: figure(stats.downlink_estimate_kbps) }),
    ];
    if (stats.layer !== null && stats.layer !== undefined) parts.push(this.t("quality.layer", { layer: stats.layer }));
    if (stats.video_paused) parts.push(this.t("quality.video_paused"));
    tile.quality.textContent = parts.join(" · ");
    tile.figure.dataset.videoPaused = String(Boolean(stats.video_paused));
    const poor = (stats.rtt_ms || 0) > 400 || (stats.loss_pct || 0) > 5 || Boolean(stats.video_paused);
    tile.figure.classList.toggle("poor", poor);
    const path = callPath(stats);
    tile.path.dataset.path = path ? path.type : "";
    tile.path.textContent = path
      ? this.t("quality.path", { type: this.t(`quality.path_${path.type}`), protocol: path.protocol.toUpperCase() })
      : "";
  }

  resumePlayback() {
    for (const tile of this.tiles.values()) tile.video.play().catch(() => {});
  }

  _label(participantId, tile) {
    const person = this.people.get(participantId);
    const role = person ? this.t(`role.${person.role}`) : "";
    tile.name.textContent = person ? `${person.name} · ${role}` : participantId;
    tile.flags.textContent = [
      tile.muted.has("microphone") ? this.t("call.flag_muted") : "",
      tile.muted.has("camera") ? this.t("call.flag_camera_off") : "",
    ].filter(Boolean).join(" ");
    tile.video.setAttribute("aria-label", this.t("call.video_of", { name: tile.name.textContent }));
    tile.figure.classList.toggle("main", Boolean(person && this.mainRoles.includes(person.role)));
  }

  _layout() {
    this.container.dataset.count = String(this.tiles.size);
  }
}
