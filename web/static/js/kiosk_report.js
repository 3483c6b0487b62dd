// The report on the kiosk's ended screen: it comes with the `report.finalised` push (or is asked
// for once at the end), is shown with the family's link as a QR code and its PIN, and prints on
// one A4 page (css/care.css) for the family to take home.

import { qrSvg } from "./qr.js";
import { formatTime, renderReport } from "./report_view.js";
import { $ } from "./ui.js";

export class KioskReport {
  /** `api()`: the kiosk's Api; `onShown()`: a report is now on the screen. */
  constructor({ i18n, api, onShown }) {
    this.i18n = i18n;
    this.api = api;
    this.onShown = onShown;
    this.clear();
    i18n.addEventListener("change", () => this.render());
  }

  bind() {
    $("#report-print").addEventListener("click", () => window.print());
  }

  /** A new consultation (and its patient, if registered): forget the last family's report. */
  clear(consultationId = null, patient = null) {
    this.consultationId = consultationId;
    this.patient = patient;
    this.final = null;
    this.onEndScreen = false;
    $("#report-sheet").hidden = true;
    $("#report-waiting").hidden = true;
    $("#report-print").hidden = true;
    for (const id of ["#sheet-patient", "#sheet-report", "#sheet-qr", "#sheet-url", "#sheet-pin", "#sheet-expires"]) {
      $(id).replaceChildren();
    }
  }

  /** `report.finalised` (and amendments): {consultation_id, report, share_code, share_pin, expires_at}. */
  received(payload) {
    if (!payload || payload.consultation_id !== this.consultationId || !payload.report) return;
    this.final = payload;
    if (this.onEndScreen) this.show();
  }

  /** The ended screen: show the report, or ask for it once; true when one is still awaited. */
  async ended() {
    this.onEndScreen = true;
    if (this.final) {
      this.show();
      return false;
    }
    const id = this.consultationId;
    if (!id) return false;
    try {
      const got = await this.api().getReport(id);
      if (got.report && got.report.status === "final" && got.share_code) {
        this.received({ consultation_id: id, ...got });
        return false;
      }
    } catch (err) {
      console.warn("no report yet", err.code);
    }
    // A registered child's report is worth waiting for; a ticket visit's may never come.
    const waiting = Boolean(this.patient) && !this.final;
    $("#report-waiting").hidden = !waiting;
    return waiting;
  }

  show() {
    $("#report-waiting").hidden = true;
    $("#report-sheet").hidden = false;
    $("#report-print").hidden = false;
    this.render();
    this.onShown();
  }

  async render() {
    const final = this.final;
    if (!final || $("#report-sheet").hidden) return;
    const t = (key, vars) => this.i18n.t(key, vars);
    const patient = this.patient;
    $("#sheet-patient").textContent = patient ? t("outlet.report.patient", { name: patient.display_name, code: patient.card_code }) : "";
    $("#sheet-report").replaceChildren(renderReport(final.report, this.i18n));
    const link = `${window.location.origin}/r/${encodeURIComponent(final.share_code)}`;
    $("#sheet-url").textContent = link;
    $("#sheet-pin").textContent = t("outlet.report.pin", { pin: final.share_pin });
    $("#sheet-expires").textContent = final.expires_at
      ? t("outlet.report.expires", { date: formatTime(final.expires_at, this.i18n.lang, false) })
      : "";
    if (!$("#sheet-qr svg") || $("#sheet-qr").dataset.link !== link) {
      try {
        $("#sheet-qr").replaceChildren(await qrSvg(link, t("outlet.report.qr_label")));
        $("#sheet-qr").dataset.link = link;
      } catch (err) {
        console.warn("no QR code on the report", err.message);
      }
    } else {
      $("#sheet-qr svg").setAttribute("aria-label", t("outlet.report.qr_label"));
    }
  }
}
