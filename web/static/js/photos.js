// Photos in the call (docs/protocol.md, Photos). KioskPhotos: the kiosk and the guest's phone
// send photos, and the kiosk takes one when the clinician asks (a countdown, then a still at the
// camera's highest resolution). PhotoGallery: the console's gallery beside the call, with zoom,
// side-by-side comparison with the patient's earlier visits, and the report's attachments.

import { captureStill, photoUrl, uploadPhoto } from "./photo_upload.js";
import { el } from "./ui.js";

const ZOOM_STEPS = [1, 1.5, 2, 3, 4];

/** A labelled <progress> with a status line, shared by both ends. */
function progressBar(t) {
  const bar = el("progress", { class: "photo-progress", max: "1", value: "0", hidden: true });
  const status = el("p", { class: "photo-status", role: "status", "aria-live": "polite" });
  let events = 0;
  return {
    nodes: [bar, status],
    show(sent, total) {
      events += 1;
      bar.hidden = false;
      bar.max = String(total);
      bar.value = String(sent);
      bar.dataset.events = String(events);
      status.textContent = t("tools.photo.sending", { percent: Math.floor((100 * sent) / Math.max(total, 1)) });
    },
    done(message) {
      bar.hidden = true;
      status.textContent = message;
    },
  };
}

export class KioskPhotos {
  /** `getStream()` gives the camera stream of the call (the still is taken from its camera). */
  /** `ownCamera`: a button that photographs what is held to the camera (the kiosk). */
  constructor({ signal, token, consultationId, getStream, t, ownCamera = false }) {
    this.signal = signal;
    this.token = token;
    this.consultationId = consultationId;
    this.getStream = getStream;
    this.t = t;
    this.progress = progressBar(t);
    this.countdown = el("div", { class: "photo-countdown", role: "status", hidden: true });
    this.file = el("input", { type: "file", accept: "image/jpeg,image/png", class: "visually-hidden", id: "photo-file" });
    this.file.addEventListener("change", () => this._sendFile());
    this.root = el("section", { class: "card photo-tools", "aria-labelledby": "photo-tools-title" },
      el("h3", { id: "photo-tools-title", "data-i18n": "tools.photo.title" }, t("tools.photo.title")),
      ownCamera
        ? el("button", { type: "button", id: "photo-document", class: "primary", "data-i18n": "tools.photo.document", onclick: () => this._onRequested({ countdown_s: 3 }) }, t("tools.photo.document"))
        : null,
      el("label", { for: "photo-file", class: "button", "data-i18n": "tools.photo.send" }, t("tools.photo.send")),
      this.file,
      ...this.progress.nodes,
      this.countdown);
    this._off = this.signal.on("photo.requested", (p) => {
      if (p && p.consultation_id === this.consultationId) this._onRequested(p);
    });
  }

  close() {
    this._off();
    clearInterval(this._timer);
    this.root.remove();
  }

  _onRequested({ countdown_s: seconds = 3 }) {
    let left = seconds;
    this.countdown.hidden = false;
    this.countdown.textContent = this.t("tools.photo.countdown", { n: left });
    clearInterval(this._timer);
    this._timer = setInterval(() => {
      left -= 1;
      if (left > 0) {
        this.countdown.textContent = this.t("tools.photo.countdown", { n: left });
        return;
      }
      clearInterval(this._timer);
      this.countdown.textContent = this.t("tools.photo.cheese");
      this._capture().finally(() => (this.countdown.hidden = true));
    }, 1000);
  }

  async _capture() {
    try {
      const shot = await captureStill(this.getStream());
      this.root.dataset.captured = `${shot.width}x${shot.height}`;
      this.root.dataset.method = shot.method;
      await this._upload(shot.blob);
    } catch (err) {
      this.progress.done(this.t("tools.photo.failed", { message: err.message }));
    }
  }

  async _sendFile() {
    const [file] = this.file.files;
    this.file.value = "";
    if (!file) return;
    try {
      await this._upload(file);
    } catch (err) {
      this.progress.done(this.t("tools.photo.failed", { message: err.message }));
    }
  }

  async _upload(blob) {
    const photo = await uploadPhoto({
      token: this.token,
      consultationId: this.consultationId,
      blob,
      onProgress: (sent, total) => this.progress.show(sent, total),
      onResume: () => (this.root.dataset.resumed = String(Number(this.root.dataset.resumed || 0) + 1)),
    });
    this.root.dataset.lastPhoto = photo.photo_id;
    this.progress.done(this.t("tools.photo.sent"));
    return photo;
  }
}

export class PhotoGallery {
  constructor({ signal, token, consultation, t }) {
    this.signal = signal;
    this.token = token;
    this.consultation = consultation;
    this.t = t;
    this.urls = new Map();
    this.progress = progressBar(t);
    this.grid = el("ul", { class: "photo-grid", id: "photo-grid" });
    this.earlier = el("ul", { class: "photo-grid earlier", id: "photo-earlier", hidden: true });
    this.viewer = el("div", { class: "photo-viewer", id: "photo-viewer", hidden: true, role: "dialog", "aria-modal": "true" });
    this.root = el("section", { class: "card photo-gallery", "aria-labelledby": "gallery-title" },
      el("h3", { id: "gallery-title", "data-i18n": "tools.gallery.title" }, t("tools.gallery.title")),
      el("div", { class: "row" },
        el("button", { type: "button", id: "take-photo", "data-i18n": "tools.gallery.take", onclick: () => this.request() }, t("tools.gallery.take")),
        el("button", { type: "button", id: "compare-photos", "data-i18n": "tools.gallery.compare", onclick: () => this.loadEarlier() }, t("tools.gallery.compare"))),
      ...this.progress.nodes,
      this.grid,
      this.earlier,
      this.viewer);
    const own = (handler) => (p) => p && p.consultation_id === consultation.id && handler(p);
    this._offs = [
      signal.on("photo.added", own((p) => this.add(p.photo))),
      signal.on("photo.progress", own((p) => this.progress.show(p.received, p.bytes))),
    ];
    this.load();
  }

  close() {
    for (const off of this._offs) off();
    for (const url of this.urls.values()) URL.revokeObjectURL(url);
    this.root.remove();
  }

  /** Photo ids ticked "attach to report" (report.save's `attachments`). */
  attachments() {
    return [...this.grid.querySelectorAll("input[data-attach]:checked")].map((box) => box.dataset.attach);
  }

  async request() {
    try {
      await this.signal.request("photo.request", { consultation_id: this.consultation.id });
      this.progress.done(this.t("tools.gallery.requested"));
    } catch (err) {
      this.progress.done(this.t("tools.photo.failed", { message: err.message }));
    }
  }

  async load() {
    const listed = await this.signal.request("photo.list", { consultation_id: this.consultation.id });
    for (const photo of listed.photos) this.add(photo);
  }

  async add(photo) {
    if (this.grid.querySelector(`[data-photo="${CSS.escape(photo.photo_id)}"]`)) return;
    this.progress.done(this.t("tools.gallery.arrived", { width: photo.width, height: photo.height }));
    this.grid.append(await this._item(photo, true));
  }

  /** The patient's photos from earlier visits (patient.history's photo_ids), to compare. */
  async loadEarlier() {
    const patientId = this.consultation.patient_id;
    this.earlier.hidden = false;
    if (!patientId) {
      this.earlier.replaceChildren(el("li", { class: "muted" }, this.t("tools.gallery.no_history")));
      return;
    }
    const history = await this.signal.request("patient.history", { patient_id: patientId });
    const items = [];
    for (const visit of history.visits) {
      if (visit.consultation_id === this.consultation.id) continue;
      for (const photoId of visit.photo_ids || []) {
        items.push(await this._item({ photo_id: photoId, taken_at: visit.started_at }, false));
      }
    }
    this.earlier.replaceChildren(...(items.length ? items : [el("li", { class: "muted" }, this.t("tools.gallery.no_history"))]));
  }

  async _url(photoId) {
    if (!this.urls.has(photoId)) this.urls.set(photoId, await photoUrl(this.token, photoId));
    return this.urls.get(photoId);
  }

  async _item(photo, attachable) {
    const img = el("img", { src: await this._url(photo.photo_id), alt: this.t("tools.gallery.photo_alt", { when: photo.taken_at || "" }), "data-photo-id": photo.photo_id });
    const item = el("li", { dataset: { photo: photo.photo_id } },
      el("button", { type: "button", class: "thumb", onclick: () => this.open(photo.photo_id) }, img));
    if (attachable) {
      item.append(el("label", { class: "small" },
        el("input", { type: "checkbox", "data-attach": photo.photo_id }), " ",
        el("span", { "data-i18n": "tools.gallery.attach" }, this.t("tools.gallery.attach"))));
      item.append(el("button", { type: "button", class: "small", "data-compare": photo.photo_id, onclick: () => this.compareWith(photo.photo_id), "data-i18n": "tools.gallery.side_by_side" }, this.t("tools.gallery.side_by_side")));
    } else {
      item.append(el("button", { type: "button", class: "small", onclick: () => this.compare(photo.photo_id), "data-i18n": "tools.gallery.side_by_side" }, this.t("tools.gallery.side_by_side")));
    }
    return item;
  }

  /** Open one photo large, zoomable (buttons, or the wheel). */
  async open(photoId) {
    await this._show([photoId]);
  }

  /** An earlier photo beside the newest (or the chosen) photo of this visit. */
  async compare(earlierId) {
    const current = this._chosen || [...this.grid.querySelectorAll("[data-photo]")].map((li) => li.dataset.photo).pop();
    await this._show(current ? [current, earlierId] : [earlierId]);
  }

  compareWith(photoId) {
    this._chosen = photoId;
    this.loadEarlier();
  }

  async _show(photoIds) {
    let step = 0;
    const images = [];
    for (const id of photoIds) images.push(el("img", { src: await this._url(id), "data-photo-id": id, alt: "" }));
    const zoom = (delta) => {
      step = Math.max(0, Math.min(ZOOM_STEPS.length - 1, step + delta));
      this.viewer.dataset.zoom = String(ZOOM_STEPS[step]);
      for (const img of images) img.style.transform = `scale(${ZOOM_STEPS[step]})`;
    };
    const panes = images.map((img) => el("div", { class: "photo-pane", onwheel: (e) => { e.preventDefault(); zoom(e.deltaY < 0 ? 1 : -1); } }, img));
    this.viewer.replaceChildren(
      el("div", { class: "photo-panes", dataset: { count: String(panes.length) } }, ...panes),
      el("div", { class: "row" },
        el("button", { type: "button", id: "zoom-in", "data-i18n": "tools.viewer.zoom_in", onclick: () => zoom(1) }, this.t("tools.viewer.zoom_in")),
        el("button", { type: "button", id: "zoom-out", "data-i18n": "tools.viewer.zoom_out", onclick: () => zoom(-1) }, this.t("tools.viewer.zoom_out")),
        el("button", { type: "button", id: "viewer-close", class: "secondary", "data-i18n": "tools.viewer.close", onclick: () => (this.viewer.hidden = true) }, this.t("tools.viewer.close"))));
    this.viewer.dataset.zoom = "1";
    this.viewer.hidden = false;
  }
}
