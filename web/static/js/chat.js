// Chat in the call (docs/protocol.md, Chat): the history, new messages as they come, a box to
// write in. `large` is the kiosk's version (large type, for a family at a counter).

import { el } from "./ui.js";

const MAX_TEXT = 1000;
const MAX_PAGES = 40;

function timeOf(iso) {
  const at = new Date(iso);
  return Number.isNaN(at.getTime()) ? "" : at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** One message as a list item; text goes in as text, never as markup. */
function messageItem(message, me, t) {
  const mine = message.from === me;
  return el("li", { class: mine ? "chat-message mine" : "chat-message", dataset: { message: message.message_id } },
    el("span", { class: "chat-from" }, mine ? t("tools.chat.me") : message.name),
    el("time", { class: "chat-time", datetime: message.sent_at }, timeOf(message.sent_at)),
    el("p", { class: "chat-text" }, message.text));
}

export class ChatPanel {
  constructor({ signal, consultationId, me, t, large = false }) {
    this.signal = signal;
    this.consultationId = consultationId;
    this.me = me;
    this.t = t;
    this.list = el("ol", { class: "chat-list", id: "chat-list", "aria-live": "polite" });
    this.input = el("textarea", { id: "chat-input", rows: large ? "2" : "1", maxlength: String(MAX_TEXT), "data-i18n-label": "tools.chat.write", "aria-label": t("tools.chat.write") });
    this.status = el("p", { class: "chat-status", role: "status" });
    const form = el("form", { class: "chat-form", onsubmit: (e) => { e.preventDefault(); this.send(); } },
      this.input,
      el("button", { type: "submit", id: "chat-send", class: "primary", "data-i18n": "tools.chat.send" }, t("tools.chat.send")));
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey) {
        e.preventDefault();
        this.send();
      }
    });
    this.root = el("section", { class: large ? "card chat large" : "card chat", "aria-labelledby": "chat-title" },
      el("h3", { id: "chat-title", "data-i18n": "tools.chat.title" }, t("tools.chat.title")),
      this.list, form, this.status);
    this._off = signal.on("chat.message", (p) => {
      if (p && p.message && p.message.consultation_id === this.consultationId) this.add(p.message);
    });
    this.load();
  }

  close() {
    this._off();
    this.root.remove();
  }

  async load() {
    let cursor = 0;
    for (let page = 0; page < MAX_PAGES && cursor !== null; page += 1) {
      const reply = await this.signal.request("chat.list", { consultation_id: this.consultationId, cursor });
      for (const message of reply.messages) this.add(message);
      cursor = reply.cursor;
    }
  }

  add(message) {
    if (this.list.querySelector(`[data-message="${CSS.escape(message.message_id)}"]`)) return;
    this.list.append(messageItem(message, this.me, this.t));
    this.list.scrollTop = this.list.scrollHeight;
  }

  async send() {
    const text = this.input.value.trim();
    if (!text) return;
    try {
      const reply = await this.signal.request("chat.send", { consultation_id: this.consultationId, text });
      this.input.value = "";
      this.status.textContent = "";
      this.add(reply.message);
    } catch (err) {
      this.status.textContent = this.t("tools.chat.failed", { message: err.message });
    }
  }
}

/** The waiting kiosk's notes from a clinician ("I will be with you in five minutes"). */
export class WaitingNotes {
  constructor({ signal, root, t }) {
    this.list = el("ul", { class: "waiting-notes", id: "waiting-notes", "aria-live": "assertive" });
    root.append(this.list);
    this._off = signal.on("chat.message", (p) => {
      if (p && p.message && p.message.to) this.list.append(messageItem(p.message, null, t));
    });
  }

  close() {
    this._off();
    this.list.remove();
  }
}

/**
 * In the console's offer dialog: a note to the outlet that waits ("I will be with you in five
 * minutes"). Made once inside `dialog`; `show(consultationId)` points it at the offered one.
 */
export function waitingNoteForm(dialog, signal, t) {
  let form = dialog.querySelector(".waiting-note");
  if (!form) {
    const input = el("input", { type: "text", id: "waiting-note-text", maxlength: String(MAX_TEXT), "data-i18n-placeholder": "tools.note.placeholder", placeholder: t("tools.note.placeholder"), "data-i18n-label": "tools.note.label", "aria-label": t("tools.note.label") });
    const status = el("p", { class: "muted small", role: "status" });
    form = el("form", { class: "waiting-note row" }, input,
      el("button", { type: "submit", id: "waiting-note-send", "data-i18n": "tools.note.submit" }, t("tools.note.submit")), status);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const text = input.value.trim();
      if (!text) return;
      try {
        await signal.request("chat.send", { consultation_id: form.dataset.consultation, text });
        input.value = "";
        status.textContent = t("tools.note.sent");
      } catch (err) {
        status.textContent = t("tools.chat.failed", { message: err.message });
      }
    });
    dialog.querySelector(".row").before(form);
  }
  return {
    show(consultationId) {
      form.dataset.consultation = consultationId;
      form.querySelector("[role=status]").textContent = "";
    },
  };
}
