// Specialist and counsellor console: presence, queue, offers, the call with quality per
// participant, invites, the door, transfer, notes and recording, the patient's earlier visits and
// the report. /counsellor uses a group layout.

import { Api, resumable } from "./api.js";
import { bindCallControls } from "./call_controls.js";
import { waitingNoteForm } from "./chat.js";
import { openMedia, stopMedia } from "./devices.js";
import { HistoryPanel } from "./history_panel.js";
import { IceConfig } from "./ice.js";
import { I18n } from "./i18n.js";
import { ReportForm } from "./report_form.js";
import { attachInCallTools } from "./in_call_tools.js";
import { MediaSession } from "./rtc.js";
import { showMyDay } from "./schedule_day.js";
import { connect } from "./session.js";
import { showCallMedia, Tiles } from "./tiles.js";
import { claimsOf, forgetToken, takeToken, wireSignIn } from "./token.js";
import { $, $$, chime, el, formatDuration, playStream, Screens, showAlert } from "./ui.js";

const MODE = window.location.pathname.startsWith("/counsellor") ? "counsellor" : "specialist";
const TOKEN_KEY = `teleconsult.${MODE}.token`;
const QUEUE_TICK_MS = 5000;

const i18n = new I18n("en");
const t = (key, vars) => i18n.t(key, vars);
const screens = new Screens(document, { signin: ["desk"], desk: ["signin"] });

const desk = {
  signal: null,
  api: null,
  identity: null,
  ice: new IceConfig(),
  queues: new Map(),
  offer: null,
  offerTimer: null,
  consultation: null,
  stream: null,
  media: null,
  token: null,
  tools: null,
};

const tiles = new Tiles($("#tiles"), {
  t,
  mainRoles: ["outlet"],
  onAutoplayBlocked: () => ($("#sound-button").hidden = false),
});
const controls = bindCallControls(i18n, () => desk.media);
const offerHistory = new HistoryPanel($("#offer-history"), { i18n, api: () => desk.api });
const visitHistory = new HistoryPanel($("#history"), { i18n, api: () => desk.api });
const reportForm = new ReportForm({
  i18n,
  api: () => desk.api,
  attachments: () => (desk.tools && desk.tools.gallery ? desk.tools.gallery.attachments() : null),
});

// ----- queue --------------------------------------------------------------------------------

function setQueue(service, entries) {
  const receivedAt = performance.now();
  desk.queues.set(service, entries.map((entry) => ({ ...entry, receivedAt })));
  renderQueue();
}

function renderQueue() {
  const entries = [...desk.queues.values()].flat().filter((e) => e.state !== "active");
  entries.sort((a, b) => Number(b.urgent) - Number(a.urgent) || b.waiting_s - a.waiting_s);

  $("#queue-empty").hidden = entries.length > 0;
  $("#queue-table").hidden = entries.length === 0;
  const rows = entries.map((entry) =>
    el("tr", { dataset: { consultation: entry.consultation_id }, class: entry.urgent ? "urgent" : null },
      el("td", {}, String(entry.position)),
      el("td", {}, el("strong", {}, entry.outlet_id), el("br"), el("span", { class: "muted small" }, t(`service.${entry.service}`))),
      el("td", { class: "wait" }, formatDuration(waited(entry), t)),
      el("td", {}, entry.urgent ? t("console.queue.urgent") : t("console.queue.routine")),
      el("td", {}, entry.state === "offered"
        ? t("console.queue.offered")
        : el("button", {
          type: "button",
          class: "small",
          disabled: desk.consultation ? true : null,
          "aria-label": t("console.queue.take_label", { outlet: entry.outlet_id }),
          onclick: () => take(entry.consultation_id),
        }, t("console.queue.take"))),
    ));
  $("#queue-rows").replaceChildren(...rows);
}

// The server sends waits when the queue changes; count on between updates.
function waited(entry) {
  return entry.waiting_s + (performance.now() - entry.receivedAt) / 1000;
}

/** Refresh only the wait cells, so keyboard focus on a row's button is kept. */
function tickWaits() {
  for (const entry of [...desk.queues.values()].flat()) {
    const cell = $(`#queue-rows tr[data-consultation="${entry.consultation_id}"] td.wait`);
    if (cell) cell.textContent = formatDuration(waited(entry), t);
  }
}

async function loadQueue() {
  try {
    const { entries } = await desk.api.listQueue();
    desk.queues.clear();
    for (const service of desk.identity.services) setQueue(service, entries.filter((e) => e.service === service));
    renderQueue();
  } catch (err) {
    showAlert(t("error.generic", { message: err.message }));
  }
}

async function take(consultationId) {
  try {
    const { consultation } = await desk.api.accept(consultationId, { pick: true });
    await enterCall(consultation);
  } catch (err) {
    showAlert(t("error.generic", { message: err.message }));
  }
}

// ----- presence and offers ------------------------------------------------------------------

async function setPresence(status) {
  try {
    await desk.api.setPresence(status);
    showPresence(status);
  } catch (err) {
    showAlert(t("error.generic", { message: err.message }));
  }
}

function showPresence(status) {
  for (const button of $$("[data-presence]")) {
    button.setAttribute("aria-pressed", String(button.dataset.presence === status));
  }
}

function showOffer({ consultation, expires_in_s: expiresIn }) {
  desk.offer = consultation;
  $("#offer-details").textContent = t("console.offer.details", {
    service: t(`service.${consultation.service}`),
    outlet: consultation.outlet_id,
    patient: consultation.patient_ref,
    urgent: consultation.urgent ? t("console.queue.urgent") : t("console.queue.routine"),
  });
  let left = Math.max(0, Math.round(expiresIn || 30));
  const tick = () => {
    $("#offer-countdown").textContent = t("console.offer.countdown", { n: left });
    left -= 1;
    if (left < 0) closeOffer();
  };
  clearInterval(desk.offerTimer);
  tick();
  desk.offerTimer = setInterval(tick, 1000);
  offerHistory.load(consultation);
  const dialog = $("#offer-dialog");
  waitingNoteForm(dialog, desk.signal, t).show(consultation.id);
  if (!dialog.open) dialog.showModal();
  $("#offer-accept").focus();
  chime();
}

function closeOffer() {
  clearInterval(desk.offerTimer);
  desk.offer = null;
  offerHistory.clear();
  const dialog = $("#offer-dialog");
  if (dialog.open) dialog.close();
}

async function answerOffer(accept) {
  const offer = desk.offer;
  closeOffer();
  if (!offer) return;
  try {
    if (accept) await enterCall((await desk.api.accept(offer.id)).consultation);
    else await desk.api.decline(offer.id);
  } catch (err) {
    showAlert(t("error.generic", { message: err.message }));
  }
}

// ----- the call -----------------------------------------------------------------------------

async function enterCall(consultation) {
  const joined = await desk.api.join(consultation.id);
  showConsultation(joined.consultation);
  openCareRecord(joined.consultation);
  $("#idle").hidden = true;
  $("#call").hidden = false;
  document.body.dataset.inCall = "true";
  renderQueue();
  if (!desk.stream) desk.stream = await openMedia({ video: true });
  playStream($("#self-view"), desk.stream);
  if (desk.media) desk.media.close();
  desk.media = new MediaSession({
    signal: desk.signal,
    consultationId: consultation.id,
    ice: desk.ice,
    localStream: desk.stream,
  });
  showCallMedia(desk.media, tiles);
  desk.media.start();
  if (desk.tools) desk.tools.close();
  desk.tools = attachInCallTools({
    role: "clinician",
    signal: desk.signal,
    token: desk.token,
    consultation: joined.consultation,
    me: claimsOf(desk.token).sub,
    getMedia: () => desk.media,
    getStream: () => desk.stream,
    t,
    root: $(".side-panels"),
    controls: $("#call .controls"),
  });
}

function showConsultation(consultation) {
  desk.consultation = consultation;
  $("#call-service").textContent = t(`service.${consultation.service}`);
  $("#call-patient").textContent = consultation.patient_ref;
  $("#call-facts").textContent = t("console.call.facts", {
    outlet: consultation.outlet_id,
    guardian: consultation.guardian_present ? t("app.yes") : t("app.no"),
    consent: consultation.consent ? t("console.call.consent_given") : t("console.call.consent_none"),
  });
  if (typeof consultation.notes === "string" && document.activeElement !== $("#notes")) {
    $("#notes").value = consultation.notes;
  }
  $("#record").disabled = !consultation.consent;
  setRecording(Boolean(consultation.recording));
  tiles.setParticipants(consultation.participants || []);
  renderDoor(consultation.participants || []);
}

/** The patient's earlier visits and this visit's report, kept open after the call for writing. */
function openCareRecord(consultation) {
  $("#care-panels").hidden = false;
  $("#report-close").hidden = true;
  visitHistory.load(consultation);
  reportForm.open(consultation);
}

function closeCareRecord() {
  $("#care-panels").hidden = true;
  visitHistory.clear();
  reportForm.close();
}

function renderDoor(participants) {
  const waiting = participants.filter((p) => p.role === "guest" && p.admitted === false);
  $("#door-empty").hidden = waiting.length > 0;
  $("#door-list").replaceChildren(...waiting.map((guest) =>
    el("li", { dataset: { guest: guest.participant_id } },
      el("span", {}, guest.name),
      el("button", { type: "button", class: "primary small", onclick: () => admit(guest.participant_id, true) }, t("console.door.admit")),
      el("button", { type: "button", class: "secondary small", onclick: () => admit(guest.participant_id, false) }, t("console.door.refuse")),
    )));
}

async function admit(guestId, yes) {
  try {
    const { consultation } = await desk.api.admit(desk.consultation.id, guestId, yes);
    showConsultation(consultation);
  } catch (err) {
    showAlert(t("error.generic", { message: err.message }));
  }
}

async function invite(guestRole) {
  try {
    const result = await desk.api.invite(desk.consultation.id, guestRole);
    $("#invite-url").value = new URL(result.url, window.location.origin).href;
    $("#invite-expiry").textContent = t("console.invite.expires", {
      time: new Date(result.expires_at).toLocaleTimeString(i18n.lang === "zh" ? "zh-CN" : "en-GB"),
    });
    $("#invite-result").hidden = false;
    $("#invite-url").select();
  } catch (err) {
    showAlert(t("error.generic", { message: err.message }));
  }
}

async function transfer() {
  const service = $("#transfer-service").value;
  try {
    await desk.api.transfer(desk.consultation.id, service);
    leaveCall();
  } catch (err) {
    showAlert(t("error.generic", { message: err.message }));
  }
}

async function saveNotes() {
  $("#notes-status").textContent = t("console.notes.saving");
  try {
    await desk.api.saveNotes(desk.consultation.id, $("#notes").value);
    $("#notes-status").textContent = t("console.notes.saved", { time: new Date().toLocaleTimeString("en-GB") });
  } catch (err) {
    $("#notes-status").textContent = t("error.generic", { message: err.message });
  }
}

async function toggleRecording() {
  const active = $("#record").getAttribute("aria-pressed") === "true";
  try {
    const id = desk.consultation.id;
    const state = await (active ? desk.api.stopRecording(id) : desk.api.startRecording(id));
    setRecording(state.active);
  } catch (err) {
    showAlert(t("error.generic", { message: err.message }));
  }
}

function setRecording(active) {
  $("#record").setAttribute("aria-pressed", String(active));
  $("#record").textContent = t(active ? "console.call.stop_record" : "console.call.record");
  $("#recording-indicator").hidden = !active;
}

async function endCall() {
  if (!desk.consultation) return;
  if (!window.confirm(t("console.call.confirm_end"))) return;
  try {
    await desk.api.end(desk.consultation.id, "completed");
  } catch (err) {
    showAlert(t("error.generic", { message: err.message }));
  }
  leaveCall();
}

function leaveCall() {
  if (desk.tools) desk.tools.close();
  desk.tools = null;
  if (desk.media) desk.media.close();
  desk.media = null;
  stopMedia(desk.stream);
  desk.stream = null;
  tiles.clear();
  desk.consultation = null;
  document.body.dataset.inCall = "false";
  $("#call").hidden = true;
  $("#idle").hidden = false;
  $("#report-close").hidden = false;
  $("#invite-result").hidden = true;
  $("#notes").value = "";
  $("#notes-status").textContent = "";
  $("#call-waiting").hidden = false;
  $("#sound-button").hidden = true;
  controls.reset();
  renderQueue();
}

// ----- server pushes ------------------------------------------------------------------------

/** Whether a push is about the consultation in the call (pushes name it by `consultation_id`). */
function mine(consultationId) {
  return Boolean(desk.consultation) && consultationId === desk.consultation.id;
}

function onReady(ready) {
  desk.identity = ready.identity;
  $("#who").textContent = ready.identity.name;
  loadQueue();
  const active = resumable(ready).find((c) => c.state === "active");
  if (active && desk.consultation && desk.consultation.id === active.id && desk.media) {
    desk.api.join(active.id)
      .then(() => desk.media.restart())
      .catch((err) => showAlert(t("error.generic", { message: err.message })));
  } else if (active && !desk.consultation) {
    enterCall(active).catch((err) => showAlert(t("error.generic", { message: err.message })));
  }
}

function bindSignal(signal) {
  desk.ice.bind(signal);
  signal.on("session.ready", onReady);
  signal.on("queue.changed", ({ service, entries }) => setQueue(service, entries));
  signal.on("consultation.offered", showOffer);
  signal.on("consultation.offer_withdrawn", (p) => {
    if (desk.offer && desk.offer.id === p.consultation_id) closeOffer();
  });
  signal.on("consultation.updated", (p) => {
    if (mine(p.consultation.id)) showConsultation(p.consultation);
  });
  signal.on("consultation.guest_waiting", (p) => {
    if (!mine(p.consultation_id)) return;
    chime();
    const participants = (desk.consultation.participants || []).filter((x) => x.participant_id !== p.guest.participant_id);
    desk.consultation.participants = [...participants, p.guest];
    renderDoor(desk.consultation.participants);
  });
  signal.on("consultation.ended", (p) => {
    if (mine(p.consultation_id)) {
      showAlert(t("console.call.ended", { reason: p.reason || "" }));
      leaveCall();
    }
  });
  signal.on("rtc.stats", (p) => {
    if (!mine(p.consultation_id)) return;
    for (const stats of p.participants || []) tiles.setQuality(stats.participant_id, stats);
  });
  signal.on("rtc.media_state", (p) => tiles.setMediaState(p.participant_id, p.source, p.muted));
  signal.on("recording.state", (p) => {
    if (mine(p.consultation_id)) setRecording(Boolean(p.active));
  });
}

// ----- wiring -------------------------------------------------------------------------------

function bindControls() {
  for (const button of $$("[data-presence]")) button.addEventListener("click", () => setPresence(button.dataset.presence));
  $("#offer-accept").addEventListener("click", () => answerOffer(true));
  $("#offer-decline").addEventListener("click", () => answerOffer(false));
  $("#offer-dialog").addEventListener("cancel", (e) => e.preventDefault());
  $("#record").addEventListener("click", toggleRecording);
  $("#end").addEventListener("click", endCall);
  for (const button of $$("[data-invite]")) button.addEventListener("click", () => invite(button.dataset.invite));
  $("#invite-copy").addEventListener("click", () => navigator.clipboard.writeText($("#invite-url").value).catch(() => $("#invite-url").select()));
  $("#transfer").addEventListener("click", transfer);
  $("#notes-save").addEventListener("click", saveNotes);
  reportForm.bind();
  $("#report-close").addEventListener("click", closeCareRecord);
  $("#sound-button").addEventListener("click", () => {
    tiles.resumePlayback();
    $("#sound-button").hidden = true;
  });
  wireSignIn(TOKEN_KEY, start);
}

async function start(token) {
  const claims = claimsOf(token);
  if (!claims || !["specialist", "counsellor"].includes(claims.role)) {
    showAlert(t("error.wrong_role"));
    screens.go("signin");
    return;
  }
  screens.go("desk");
  desk.token = token;
  desk.signal = await connect(token, i18n, {
    onRefused: () => {
      forgetToken(TOKEN_KEY);
      desk.signal.close();
      screens.go("signin");
    },
  });
  desk.api = new Api(desk.signal);
  bindSignal(desk.signal);
  showMyDay(desk.signal, $("#my-day"));
}

function boot() {
  document.body.dataset.mode = MODE;
  $("#brand").dataset.i18n = `console.brand_${MODE}`;
  $("#tiles").classList.toggle("group", MODE === "counsellor");
  i18n.bindSwitch();
  i18n.addEventListener("change", renderQueue);
  setInterval(tickWaits, QUEUE_TICK_MS);
  bindControls();
  const token = takeToken(TOKEN_KEY);
  if (token) start(token);
  else screens.go("signin");
}

boot();
