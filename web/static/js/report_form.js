// The clinician's report: the service's findings fields (report.template) and summary, advice,
// referral, follow-up and, where the family only reads what is shared (counselling), a "share
// with family" tick. Save draft, Finalise, then Amend with a reason; every version stays readable.

import { fieldLabel, formatTime, renderReport } from "./report_view.js";
import { $, el } from "./ui.js";

const MIN_REASON = 3;
// A draft is saved this long after the last keystroke, so a dropped connection loses little.
const AUTOSAVE_MS = 4000;

export class ReportForm {
  /** `api()`: the console's Api; `attachments()`: the photo ids ticked in the call's gallery,
   * or null once the call's gallery is gone (the report then keeps those it has). */
  constructor({ i18n, api, attachments }) {
    this.i18n = i18n;
    this.api = api;
    this.attachments = attachments;
    this.consultation = null;
    this.template = null;
    this.report = null;
    this.viewing = null;
    this.autosave = null;
    i18n.addEventListener("change", () => this.relabel());
  }

  t(key, vars) {
    return this.i18n.t(key, vars);
  }

  bind() {
    $("#report-save").addEventListener("click", () => this.save());
    $("#report-finalise").addEventListener("click", () => this.finalise());
    $("#report-amend-save").addEventListener("click", () => this.amend());
    $("#report-form").addEventListener("submit", (event) => event.preventDefault());
    $("#report-form").addEventListener("input", (event) => {
      if (event.target.id !== "report-reason") this.draftChanged();
    });
  }

  /** Start (or pick up) the report of `consultation`: its template, then any saved version. */
  async open(consultation) {
    if (this.consultation && this.consultation.id === consultation.id) return;
    this.consultation = consultation;
    this.report = null;
    this.viewing = null;
    $("#report-form").reset();
    this.say(null);
    try {
      const { template } = await this.api().reportTemplate(consultation.service);
      this.template = template;
      this.buildFindings();
      const { report } = await this.api().getReport(consultation.id);
      if (report) this.fill(report);
    } catch (err) {
      this.say("console.report.failed", { message: err.message });
    }
    this.showState();
  }

  close() {
    clearTimeout(this.autosave);
    this.consultation = null;
    this.template = null;
    this.report = null;
    $("#report-findings").replaceChildren();
    $("#report-version-view").hidden = true;
  }

  buildFindings() {
    $("#report-findings").replaceChildren(...this.template.fields.map((name) =>
      el("label", { dataset: { field: name } },
        el("span", {}, fieldLabel(this.i18n, name)),
        el("input", { type: "text", name, maxlength: "200", autocomplete: "off" }))));
    $("#report-share-line").hidden = !this.template.family_opt_in;
    $("#report-share-hint").hidden = !this.template.family_opt_in;
  }

  fill(report) {
    this.report = report;
    for (const input of $("#report-findings").querySelectorAll("input")) input.value = report.findings[input.name] || "";
    $("#report-summary").value = report.summary || "";
    $("#report-advice").value = report.advice || "";
    $("#report-referral").value = report.referral || "";
    $("#report-follow-up").value = report.follow_up_days || "";
    $("#report-share").checked = Boolean(report.shared_with_family);
  }

  /** What the form says, as report.save and report.amend take it. */
  content() {
    const findings = {};
    for (const input of $("#report-findings").querySelectorAll("input")) {
      if (input.value.trim()) findings[input.name] = input.value.trim();
    }
    const content = {
      findings,
      summary: $("#report-summary").value.trim(),
      advice: $("#report-advice").value.trim(),
      shared_with_family: Boolean(this.template && this.template.family_opt_in && $("#report-share").checked),
    };
    const ticked = this.attachments();
    content.attachments = ticked ?? (this.report ? this.report.attachments : []);
    const referral = $("#report-referral").value.trim();
    if (referral) content.referral = referral;
    const days = Number($("#report-follow-up").value);
    if ($("#report-follow-up").value && Number.isInteger(days)) content.follow_up_days = days;
    return content;
  }

  /** Save the draft a little after typing stops (a final report changes only by amendment). */
  draftChanged() {
    clearTimeout(this.autosave);
    if (!this.consultation || (this.report && this.report.status === "final")) return;
    this.autosave = setTimeout(() => this.save(), AUTOSAVE_MS);
  }

  async save() {
    clearTimeout(this.autosave);
    if (!this.consultation) return false;
    try {
      const { report } = await this.api().saveReport(this.consultation.id, this.content());
      this.report = report;
      this.say("console.report.saved", { time: formatTime(report.saved_at, this.i18n.lang) });
      return true;
    } catch (err) {
      this.say("console.report.failed", { message: err.message });
      return false;
    } finally {
      this.showState();
    }
  }

  async finalise() {
    if (!this.consultation || !window.confirm(this.t("console.report.confirm_finalise"))) return;
    if (!(await this.save())) return;
    try {
      const { report } = await this.api().finaliseReport(this.consultation.id);
      this.report = report;
      this.say("console.report.final", { version: report.version });
    } catch (err) {
      this.say("console.report.failed", { message: err.message });
    }
    this.showState();
  }

  async amend() {
    const reason = $("#report-reason").value.trim();
    if (reason.length < MIN_REASON) {
      this.say("console.report.reason_needed");
      $("#report-reason").focus();
      return;
    }
    try {
      const { report } = await this.api().amendReport(this.consultation.id, this.content(), reason);
      this.report = report;
      $("#report-reason").value = "";
      this.say("console.report.final", { version: report.version });
    } catch (err) {
      this.say("console.report.failed", { message: err.message });
    }
    this.showState();
  }

  /** Show version `version` as it was saved (read-only), or hide it when shown already. */
  async showVersion(version) {
    const view = $("#report-version-view");
    if (this.viewing === version && !view.hidden) {
      view.hidden = true;
      return;
    }
    try {
      const { report } = await this.api().getReport(this.consultation.id, version);
      this.viewing = version;
      view.replaceChildren(el("h4", {}, this.t("console.report.version", { version })), renderReport(report, this.i18n));
      view.hidden = false;
    } catch (err) {
      this.say("console.report.failed", { message: err.message });
    }
  }

  showState() {
    const final = Boolean(this.report && this.report.status === "final");
    const status = $("#report-status");
    status.dataset.status = this.report ? this.report.status : "none";
    status.textContent = this.report ? `· ${this.t("console.report.version", { version: this.report.version })}` : "";
    $("#report-draft-actions").hidden = final;
    $("#report-amend").hidden = !final;
    const versions = final ? this.report.version : 0;
    $("#report-versions").hidden = versions === 0;
    $("#report-version-buttons").replaceChildren(...Array.from({ length: versions }, (_, i) =>
      el("button", { type: "button", class: "small secondary", dataset: { version: String(i + 1) }, onclick: () => this.showVersion(i + 1) },
        this.t("console.report.version", { version: i + 1 }))));
  }

  say(key, vars) {
    this.i18n.say($("#report-message"), key, vars);
  }

  relabel() {
    for (const label of $("#report-findings").querySelectorAll("label")) {
      label.querySelector("span").textContent = fieldLabel(this.i18n, label.dataset.field);
    }
    if (this.consultation) this.showState();
  }
}
