// Screen share (docs/protocol.md, Media: the `screen` source). The console shares a window or
// screen as a second video track and stops it; the outlet and guests see it large.

import { el } from "./ui.js";

export class ScreenShare {
  constructor({ getMedia, t }) {
    this.getMedia = getMedia;
    this.t = t;
    this.track = null;
    this.button = el("button", { type: "button", id: "screen-share", class: "control", "aria-pressed": "false", "data-i18n": "tools.screen.share", onclick: () => this.toggle() }, t("tools.screen.share"));
  }

  async toggle() {
    if (this.track) await this.stop();
    else await this.start();
  }

  async start() {
    const media = this.getMedia();
    if (!media) return;
    const stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    const [track] = stream.getVideoTracks();
    this.track = track;
    // The browser's own "Stop sharing" bar ends the track.
    track.addEventListener("ended", () => this.stop());
    await media.shareScreen(track);
    this._label(true);
  }

  async stop() {
    const track = this.track;
    this.track = null;
    this._label(false);
    if (track) track.stop();
    const media = this.getMedia();
    if (media) await media.stopScreen();
  }

  close() {
    if (this.track) this.stop();
    this.button.remove();
  }

  _label(on) {
    this.button.setAttribute("aria-pressed", String(on));
    this.button.dataset.i18n = on ? "tools.screen.stop" : "tools.screen.share";
    this.button.textContent = this.t(this.button.dataset.i18n);
  }
}

/** Shows the screen another participant shares, large, while it is shared. */
export class ScreenView {
  constructor({ signal, media, consultationId, t }) {
    this.video = el("video", { class: "screen-view", id: "screen-view", autoplay: true, playsinline: true, muted: true, hidden: true, "data-i18n-label": "tools.screen.view", "aria-label": t("tools.screen.view") });
    this.paused = new Set();
    this.track = null;
    const own = (handler) => (p) => p && p.consultation_id === consultationId && handler(p);
    this._offs = [
      signal.on("rtc.media_state", own((p) => {
        if (p.source !== "screen") return;
        if (p.muted) this.paused.add(p.participant_id);
        else this.paused.delete(p.participant_id);
        this._render();
      })),
      signal.on("rtc.tracks", own(() => this._render())),
    ];
    this._onStream = () => this._render();
    this.media = media;
    media.addEventListener("stream", this._onStream);
    media.addEventListener("streamremoved", this._onStream);
  }

  close() {
    for (const off of this._offs) off();
    this.media.removeEventListener("stream", this._onStream);
    this.media.removeEventListener("streamremoved", this._onStream);
    this.video.srcObject = null;
    this.video.remove();
  }

  _render() {
    let shown = null;
    for (const [participantId, stream] of this.media.remoteStreams) {
      if (this.paused.has(participantId)) continue;
      const track = stream.getVideoTracks().find((t) => t.id.endsWith(":screen") && t.readyState === "live");
      if (track) shown = track;
    }
    if (shown === this.track) return;
    this.track = shown;
    this.video.hidden = !shown;
    document.body.dataset.screenShared = String(Boolean(shown));
    this.video.srcObject = shown ? new MediaStream([shown]) : null;
    if (shown) this.video.play().catch(() => {});
  }
}
