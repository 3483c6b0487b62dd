// The in-call clinical tools put on each call page: photos, chat and screen share. A page calls
// attachInCallTools when its call starts and close() when it ends.

import { ChatPanel } from "./chat.js";
import { KioskPhotos, PhotoGallery } from "./photos.js";
import { ScreenShare, ScreenView } from "./screen_share.js";
import { el } from "./ui.js";

/**
 * `role`: "clinician" (gallery, photo request, screen share), "outlet" (photos on request, large
 * chat, the shared screen) or "guest" (photos, chat, the shared screen). `root`: where the tools
 * go; `controls`: where the screen share button goes (clinician).
 */
export function attachInCallTools({ role, signal, token, consultation, me, getMedia, getStream, t, root, controls }) {
  const parts = [];
  const box = el("div", { class: `in-call-tools ${role}`, id: "in-call-tools" });
  root.append(box);
  const media = getMedia();
  if (role === "clinician") {
    const gallery = new PhotoGallery({ signal, token, consultation, t });
    const share = new ScreenShare({ getMedia, t });
    (controls || box).append(share.button);
    box.append(gallery.root);
    parts.push(gallery, share);
  } else {
    const photos = new KioskPhotos({ signal, token, consultationId: consultation.id, getStream, t, ownCamera: role === "outlet" });
    const view = new ScreenView({ signal, media, consultationId: consultation.id, t });
    root.prepend(view.video);
    box.append(photos.root);
    parts.push(photos, view);
  }
  const chat = new ChatPanel({ signal, consultationId: consultation.id, me, t, large: role === "outlet" });
  box.append(chat.root);
  parts.push(chat);
  return {
    gallery: parts.find((p) => p instanceof PhotoGallery) || null,
    close() {
      for (const part of parts) part.close();
      box.remove();
    },
  };
}
