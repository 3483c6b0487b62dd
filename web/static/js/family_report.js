// The family's phone page (/r/<share code>): asks for the PIN printed on the report, then shows
// the report. Chinese when the phone is set to Chinese, English otherwise, with a switch.

import { I18n } from "./i18n.js";
import { renderReport } from "./report_view.js";
import { $, Screens } from "./ui.js";

const i18n = new I18n(navigator.language.toLowerCase().startsWith("zh") ? "zh" : "en");
const screens = new Screens(document, { pin: ["report"], report: [] });
const shareCode = decodeURIComponent(window.location.pathname.split("/").pop());
// What each refusal tells the family to do; any other failure is a network or server problem.
const REFUSALS = { 400: "family.error.format", 403: "family.error.wrong_pin", 404: "family.error.not_found", 410: "family.error.expired", 429: "family.error.locked" };

let report = null;
// The attached photos, fetched once with the PIN (object URLs of their images).
let photos = [];

function say(key) {
  i18n.say($("#pin-message"), key);
}

async function readReport(event) {
  event.preventDefault();
  const pin = $("#pin").value.trim();
  if (!/^[0-9]{4,8}$/.test(pin)) {
    say("family.error.format");
    return;
  }
  const button = $("#pin-form button");
  button.disabled = true;
  try {
    const response = await fetch(`/api/reports/${encodeURIComponent(shareCode)}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ pin }),
      cache: "no-store",
    });
    if (!response.ok) {
      say(REFUSALS[response.status] || "family.error.server");
      $("#pin").select();
      return;
    }
    report = (await response.json()).report;
    say(null);
    show();
    screens.go("report");
    await showPhotos(pin);
  } catch (err) {
    say("family.error.network");
  } finally {
    button.disabled = false;
  }
}

function show() {
  if (report) $("#family-report").replaceChildren(renderReport(report, i18n));
}

/** The photos the clinician attached to the report, each read with the PIN (the report only
 * lists what the family may see). */
async function showPhotos(pin) {
  for (const url of photos) URL.revokeObjectURL(url);
  photos = [];
  const box = $("#family-photos");
  box.replaceChildren();
  for (const photoId of report.attachments || []) {
    const response = await fetch(
      `/api/reports/${encodeURIComponent(shareCode)}/photos/${encodeURIComponent(photoId)}`,
      { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ pin }), cache: "no-store" },
    );
    if (!response.ok) continue;
    const url = URL.createObjectURL(await response.blob());
    photos.push(url);
    const image = document.createElement("img");
    image.src = url;
    image.alt = i18n.t("family.photo");
    image.className = "family-photo";
    box.append(image);
  }
  box.hidden = photos.length === 0;
}

function boot() {
  i18n.bindSwitch();
  i18n.addEventListener("change", show);
  screens.go("pin");
  $("#pin-form").addEventListener("submit", readReport);
  $("#pin").focus();
}

boot();
