// The kiosk's patient step, between the service and the consent: a new child is registered
// (with the guardian's consent to keep a record) and gets a patient card with a QR code; a
// returning child is found by the card's number, typed or scanned; or the visit goes without one.

import { qrSvg, scanQr } from "./qr.js";
import { $, $$ } from "./ui.js";

const NAME_MAX = 40;
const PHONE = /^\+?[0-9 -]{5,20}$/;
// A card number as printed (XXXX-XXXX; the last character is a check character).
const CARD_CODE = /^[0-9A-Z]{4}-?[0-9A-Z]{4}$/;

/** The card number in a scanned or typed text, upper-cased, or null. */
export function cardCodeIn(text) {
  const code = text.trim().toUpperCase().replace(/\s+/g, "");
  return CARD_CODE.test(code) ? code : null;
}

export class PatientStep {
  /**
   * `api()`: the kiosk's Api; `stream()`: its camera stream, if any (for scanning);
   * `onChosen(patient | null)`: the family chose (null: a visit without a card).
   */
  constructor({ i18n, screens, api, stream, onChosen }) {
    this.i18n = i18n;
    this.screens = screens;
    this.api = api;
    this.stream = stream;
    this.onChosen = onChosen;
    this.patient = null;
    this.stopScan = null;
  }

  t(key, vars) {
    return this.i18n.t(key, vars);
  }

  bind() {
    for (const button of $$("[data-patient]")) button.addEventListener("click", () => this.choose(button.dataset.patient));
    for (const button of $$("[data-patient-back]")) {
      button.addEventListener("click", () => {
        this.endScan();
        this.screens.go(button.dataset.patientBack);
      });
    }
    const form = $("#register-form");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.register();
    });
    $("#record-consent").addEventListener("change", () => ($("#register-submit").disabled = !$("#record-consent").checked));
    $("#card-print").addEventListener("click", () => window.print());
    $("#card-next").addEventListener("click", () => this.onChosen(this.patient));
    $("#lookup-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.lookup($("#card-input").value);
    });
    $("#card-input").addEventListener("input", () => this.found(null));
    $("#scan-card").addEventListener("click", () => this.scan());
    $("#returning-next").addEventListener("click", () => {
      this.endScan();
      this.onChosen(this.patient);
    });
    this.i18n.addEventListener("change", () => this.relabel());
  }

  /** Show the choice afresh (a new family). */
  begin() {
    this.reset();
    this.screens.go("patient");
  }

  reset() {
    this.endScan();
    this.patient = null;
    $("#register-form").reset();
    $("#register-submit").disabled = true;
    this.say("#register-message", null);
    $("#card-input").value = "";
    this.found(null);
    this.say("#lookup-message", null);
    $("#card-qr").replaceChildren();
    for (const id of ["#card-name", "#card-born", "#card-code"]) $(id).textContent = "";
  }

  choose(kind) {
    if (kind === "none") {
      this.patient = null;
      this.onChosen(null);
    } else if (kind === "new") {
      this.screens.go("register");
      $("#child-name").focus();
    } else {
      this.screens.go("returning");
      $("#card-input").focus();
    }
  }

  say(selector, key, vars) {
    this.i18n.say($(selector), key, vars);
  }

  /** The form's child, or null after saying what is wrong. */
  formChild() {
    const name = $("#child-name").value.trim();
    const year = Number($("#child-birth-year").value);
    const thisYear = new Date().getFullYear();
    const guardianName = $("#guardian-name").value.trim();
    const phone = $("#guardian-phone").value.trim();
    if (!name || name.length > NAME_MAX || guardianName.length > NAME_MAX) {
      this.say("#register-message", "outlet.register.bad_name");
      $("#child-name").focus();
      return null;
    }
    if (!Number.isInteger(year) || year < 1900 || year > thisYear) {
      this.say("#register-message", "outlet.register.bad_year", { min: 1900, max: thisYear });
      $("#child-birth-year").focus();
      return null;
    }
    if (phone && !PHONE.test(phone)) {
      this.say("#register-message", "outlet.register.bad_phone");
      $("#guardian-phone").focus();
      return null;
    }
    const child = {
      display_name: name,
      birth_year: year,
      sex: $("#register-form").elements.sex.value || "unspecified",
      record_consent: true,
    };
    if (guardianName) child.guardian_name = guardianName;
    if (phone) child.guardian_phone = phone;
    return child;
  }

  async register() {
    if (!$("#record-consent").checked) return;
    const child = this.formChild();
    if (!child) return;
    $("#register-submit").disabled = true;
    try {
      this.patient = (await this.api().registerPatient(child)).patient;
      this.say("#register-message", null);
      await this.showCard();
    } catch (err) {
      this.say("#register-message", "outlet.register.failed", { message: err.message });
    } finally {
      $("#register-submit").disabled = !$("#record-consent").checked;
    }
  }

  async showCard() {
    const patient = this.patient;
    $("#card-name").textContent = patient.display_name;
    $("#card-code").textContent = patient.card_code;
    this.relabel();
    this.screens.go("card");
    try {
      $("#card-qr").replaceChildren(await qrSvg(patient.card_code, this.t("outlet.card.qr_label", { code: patient.card_code })));
    } catch (err) {
      console.warn("no QR code on the card", err.message);
    }
  }

  /** Texts that carry values, again in the language now chosen. */
  relabel() {
    if (this.patient) {
      $("#card-born").textContent = this.t("outlet.card.born", { year: this.patient.birth_year });
      const qr = $("#card-qr svg");
      if (qr) qr.setAttribute("aria-label", this.t("outlet.card.qr_label", { code: this.patient.card_code }));
    }
    if (this.patient && !$("#lookup-found").hidden) this.found(this.patient);
  }

  async lookup(text) {
    const code = cardCodeIn(text);
    if (!code) {
      this.say("#lookup-message", "outlet.returning.bad_code");
      return false;
    }
    try {
      const { patient } = await this.api().lookupPatient(code);
      this.say("#lookup-message", null);
      this.found(patient);
      return true;
    } catch (err) {
      const key = { unknown_card: "outlet.returning.unknown", bad_card_code: "outlet.returning.bad_code" }[err.code];
      this.say("#lookup-message", key || "outlet.returning.failed", { message: err.message });
      this.found(null);
      return false;
    }
  }

  found(patient) {
    this.patient = patient;
    const line = $("#lookup-found");
    line.hidden = !patient;
    line.textContent = patient
      ? this.t("outlet.returning.found", { name: patient.display_name, year: patient.birth_year, code: patient.card_code })
      : "";
    $("#returning-next").disabled = !patient;
    if (patient) $("#returning-next").focus();
  }

  async scan() {
    const stream = this.stream();
    if (!stream || stream.getVideoTracks().every((track) => track.readyState !== "live")) {
      this.say("#lookup-message", "outlet.returning.no_camera");
      return;
    }
    this.endScan();
    this.say("#lookup-message", null);
    $("#scan-figure").hidden = false;
    try {
      this.stopScan = await scanQr($("#scan-view"), stream, (text) => {
        const code = cardCodeIn(text);
        if (!code) return false;
        $("#card-input").value = code;
        $("#scan-figure").hidden = true;
        this.lookup(code);
        return true;
      });
    } catch (err) {
      $("#scan-figure").hidden = true;
      this.say("#lookup-message", "outlet.returning.no_camera");
    }
  }

  endScan() {
    if (this.stopScan) this.stopScan();
    this.stopScan = null;
    $("#scan-figure").hidden = true;
  }
}
