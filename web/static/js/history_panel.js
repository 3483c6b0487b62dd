// The patient's earlier visits, newest first, each with its final report: shown small in the
// offer dialog (so the clinician knows whom they accept) and in full beside the call.

import { formatTime, renderReport } from "./report_view.js";
import { el } from "./ui.js";

export class HistoryPanel {
  /** `root`: the element to fill; `api()`: the console's Api. */
  constructor(root, { i18n, api }) {
    this.root = root;
    this.i18n = i18n;
    this.api = api;
    this.shown = null;
    i18n.addEventListener("change", () => this.render());
  }

  t(key, vars) {
    return this.i18n.t(key, vars);
  }

  /** Load and show the history of `consultation`'s patient (nothing known without a card). */
  async load(consultation) {
    const request = consultation.id;
    this.shown = { consultation, visits: null, error: null };
    this.root.hidden = false;
    if (consultation.patient_id) {
      try {
        const { visits } = await this.api().patientHistory(consultation.patient_id);
        if (!this.shown || this.shown.consultation.id !== request) return;
        this.shown.visits = visits.filter((visit) => visit.consultation_id !== consultation.id);
      } catch (err) {
        if (this.shown && this.shown.consultation.id === request) this.shown.error = err.message;
      }
    }
    this.render();
  }

  clear() {
    this.shown = null;
    this.root.replaceChildren();
    this.root.hidden = true;
  }

  render() {
    if (!this.shown) return;
    const { consultation, visits, error } = this.shown;
    let body;
    if (!consultation.patient_id) body = el("p", { class: "muted" }, this.t("console.history.unregistered"));
    else if (error) body = el("p", { class: "muted" }, this.t("console.history.failed", { message: error }));
    else if (!visits) body = null;
    else if (visits.length === 0) body = el("p", { class: "muted" }, this.t("console.history.empty"));
    else body = el("ol", { class: "history-list" }, visits.map((visit) => this.visitItem(visit)));
    this.root.replaceChildren(...(body ? [body] : []));
  }

  visitItem(visit) {
    const when = formatTime(visit.started_at || visit.ended_at, this.i18n.lang);
    const title = [when, this.t(`service.${visit.service}`), visit.clinician_name].filter(Boolean).join(" · ");
    return el("li", { dataset: { consultation: visit.consultation_id } },
      el("details", {},
        el("summary", {}, title, visit.report && visit.report.summary ? el("span", { class: "muted" }, ` — ${short(visit.report.summary)}`) : null),
        visit.report ? renderReport(visit.report, this.i18n) : el("p", { class: "muted" }, this.t("console.history.no_report"))));
  }
}

function short(text, max = 80) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
