// The outlet kiosk: start → device check → service → patient (new, returning or none) →
// consent → waiting → call → end (with the report) → start.
// It runs unattended: every path leads back to the start screen.

import { Api, resumable } from "./api.js";
import { clearPendingAppointment, pendingAppointment, showTodayOnKiosk } from "./appointments.js";
import { bindCallControls } from "./call_controls.js";
import { LevelMeter, measureLink, openMedia, stopMedia } from "./devices.js";
import { checkRelay, IceConfig } from "./ice.js";
import { I18n } from "./i18n.js";
import { KioskReport } from "./kiosk_report.js";
import { PatientStep } from "./kiosk_patient.js";
import { attachInCallTools } from "./in_call_tools.js";
import { WaitingNotes } from "./chat.js";
import { MediaSession } from "./rtc.js";
import { connect } from "./session.js";
import { showCallMedia, Tiles } from "./tiles.js";
import { claimsOf, takeToken } from "./token.js";
import { $, $$, formatDuration, playStream, Screens, showAlert } from "./ui.js";

const TOKEN_KEY = "teleconsult.outlet.token";
const CONSULTATION_KEY = "teleconsult.outlet.consultation";
// Seconds the end screen stays before the kiosk resets; a kiosk URL may set ?return_after=N.
const END_SCREEN_S = Math.min(120, Math.max(1, Number(new URLSearchParams(window.location.search).get("return_after")) || 12));
const IDLE_RESET_S = 180;
// How long the ended screen waits for a registered child's report (shown, it stays IDLE_RESET_S).
const REPORT_WAIT_S = 300;

const i18n = new I18n("zh");
const t = (key, vars) => i18n.t(key, vars);
const screens = new Screens(document, {
  start: ["check", "waiting", "call"],
  check: ["start", "service"],
  service: ["start", "check", "patient", "consent"],
  patient: ["start", "service", "register", "returning", "consent"],
  register: ["start", "patient", "card"],
  card: ["start", "consent"],
  returning: ["start", "patient", "consent"],
  consent: ["start", "service", "patient", "waiting"],
  waiting: ["start", "call", "ended"],
  call: ["ended", "start"],
  ended: ["start"],
});

const kiosk = {
  token: null,
  tools: null,
  notes: null,
  signal: null,
  api: null,
  identity: null,
  ice: new IceConfig(),
  stream: null,
  meter: null,
  media: null,
  service: null,
  patient: null,
  ticket: null,
  consultation: null,
  joining: null,
  audioOnly: false,
  endTimer: null,
  idleTimer: null,
  lastEntry: null,
};

const tiles = new Tiles($("#tiles"), {
  t,
  mainRoles: ["specialist", "counsellor"],
  onAutoplayBlocked: () => ($("#sound-button").hidden = false),
});
const controls = bindCallControls(i18n, () => kiosk.media);
const patientStep = new PatientStep({
  i18n,
  screens,
  api: () => kiosk.api,
  stream: () => kiosk.stream,
  onChosen: showConsent,
});
const report = new KioskReport({
  i18n,
  api: () => kiosk.api,
  onShown: () => countDown(IDLE_RESET_S),
});

// ----- start and device check ---------------------------------------------------------------

async function startCheck() {
  screens.go("check");
  $("#check-next").disabled = true;
  $("#net-advice").hidden = true;
  $("#net-result").textContent = t("outlet.check.measuring");
  $("#relay-result").hidden = true;
  try {
    kiosk.stream = await openMedia({ video: true });
  } catch (err) {
    showAlert(t("error.no_devices"));
    return;
  }
  const hasVideo = kiosk.stream.getVideoTracks().length > 0;
  $("#audio-only").checked = !hasVideo;
  $("#audio-only").disabled = !hasVideo;
  playStream($("#preview"), kiosk.stream);
  kiosk.meter = new LevelMeter(kiosk.stream, (level) => {
    $("#mic-level").value = level;
    if (level > 0.05) $("#mic-status").textContent = t("outlet.check.mic_ok");
  });
  const relay = showRelayCheck();
  try {
    const link = await measureLink();
    $("#net-result").textContent = t("outlet.check.net_figures", {
      rtt: Math.round(link.rttMs),
      down: rate(link.downKbps),
      up: rate(link.upKbps),
    });
    $("#net-result").dataset.weak = String(link.weak);
    if (link.weak && hasVideo) {
      $("#net-advice").textContent = t("outlet.check.weak");
      $("#net-advice").hidden = false;
      $("#audio-only").checked = true;
    }
  } catch (err) {
    $("#net-result").textContent = t("outlet.check.net_failed");
  }
  await relay;
  $("#check-next").disabled = false;
}

/** Try the TURN server from this kiosk and say whether calls will need it. */
async function showRelayCheck() {
  const line = $("#relay-result");
  if (kiosk.ice.turnServers().length === 0) return;
  line.hidden = false;
  line.dataset.i18n = "outlet.check.relay_testing";
  line.textContent = t(line.dataset.i18n);
  const { result, transport } = await checkRelay(kiosk.ice).catch(() => ({ result: "unreachable" }));
  line.dataset.result = result;
  line.dataset.i18n = `outlet.check.relay_${result === "relay" ? "needed" : result}`;
  line.dataset.i18nVars = JSON.stringify({ transport: (transport || "").toUpperCase() });
  line.textContent = t(line.dataset.i18n, { transport: (transport || "").toUpperCase() });
}

function rate(kbps) {
  return kbps >= 1000 ? `${(kbps / 1000).toFixed(1)} Mbps` : `${Math.round(kbps)} kbps`;
}

function stopCheck() {
  if (kiosk.meter) kiosk.meter.stop();
  kiosk.meter = null;
}

// ----- service, consent, check-in -----------------------------------------------------------

function newTicket() {
  const letters = "ACDEFGHJKLMNPQRTUVWXY";
  const digits = crypto.getRandomValues(new Uint32Array(1))[0] % 1000;
  const letter = letters[crypto.getRandomValues(new Uint8Array(1))[0] % letters.length];
  return `${letter}${String(digits).padStart(3, "0")}`;
}

function chooseService(service) {
  kiosk.service = service;
  // A booked visit names its child already: straight to consent.
  const booked = pendingAppointment();
  if (booked && booked.service === service) showConsent(null);
  else patientStep.begin();
}

function showConsent(patient) {
  const service = kiosk.service;
  kiosk.patient = patient;
  kiosk.ticket = kiosk.ticket || newTicket();
  $("#consent-patient-line").hidden = !patient;
  $("#consent-patient").textContent = patient ? `${patient.display_name} · ${patient.card_code}` : "";
  $("#consent-service").textContent = t(`service.${service}`);
  $("#consent-service").dataset.i18n = `service.${service}`;
  $("#ticket").textContent = kiosk.ticket;
  for (const box of $$("[data-screen=consent] input[type=checkbox]")) box.checked = false;
  updateCheckInButton();
  screens.go("consent");
}

function updateCheckInButton() {
  $("#check-in").disabled = !($("#guardian-present").checked && $("#consent-consult").checked);
}

async function checkIn() {
  $("#check-in").disabled = true;
  kiosk.audioOnly = $("#audio-only").checked;
  try {
    const booked = pendingAppointment();
    const result = await kiosk.api.checkIn({
      service: kiosk.service,
      outletId: kiosk.identity.subject,
      patientRef: kiosk.ticket,
      patientId: kiosk.patient ? kiosk.patient.patient_id : null,
      guardianPresent: $("#guardian-present").checked,
      appointmentId: booked && booked.service === kiosk.service ? booked.appointment_id : null,
    });
    clearPendingAppointment();
    const consultation = result.consultation;
    remember(consultation);
    if ($("#consent-record").checked) {
      await kiosk.api.setConsent(consultation.id, true).catch((err) => console.warn("consent not stored", err.code));
    }
    stopCheck();
    enterWaiting({ position: result.position, estimated_wait_s: result.estimated_wait_s, state: consultation.state });
  } catch (err) {
    showAlert(t("error.check_in", { message: err.message }));
    updateCheckInButton();
  }
}

function remember(consultation) {
  if (report.consultationId !== consultation.id) report.clear(consultation.id, kiosk.patient);
  kiosk.consultation = consultation;
  sessionStorage.setItem(CONSULTATION_KEY, consultation.id);
}

// ----- waiting ------------------------------------------------------------------------------

function enterWaiting(entry) {
  if (screens.current !== "waiting") screens.go("waiting");
  if (!kiosk.notes) kiosk.notes = new WaitingNotes({ signal: kiosk.signal, root: $('[data-screen="waiting"]'), t });
  $("#waiting-ticket").textContent = kiosk.consultation.patient_ref || kiosk.ticket || "";
  showPosition(entry);
}

function showPosition(entry) {
  if (!entry) return;
  kiosk.lastEntry = entry;
  if (entry.position !== undefined && entry.position !== null) {
    $("#queue-position").textContent = String(entry.position);
  }
  const wait = entry.estimated_wait_s;
  $("#queue-wait").textContent = wait === undefined || wait === null ? t("outlet.waiting.unknown") : formatDuration(wait, t);
  $("#waiting-offered").hidden = entry.state !== "offered";
}

async function cancelWaiting() {
  const consultation = kiosk.consultation;
  if (consultation) {
    await kiosk.api.cancel(consultation.id).catch((err) => console.warn("cancel failed", err.code));
  }
  resetKiosk();
}

// ----- call ---------------------------------------------------------------------------------

async function enterCall(consultation) {
  // Updates keep coming while the join is answered: one join (and one media session) per call.
  if (kiosk.joining === consultation.id) return;
  kiosk.joining = consultation.id;
  try {
    await joinCall(consultation);
  } finally {
    kiosk.joining = null;
  }
}

async function joinCall(consultation) {
  remember(consultation);
  stopCheck();
  let joined;
  try {
    joined = await kiosk.api.join(consultation.id);
  } catch (err) {
    showAlert(t("error.join", { message: err.message }));
    resetKiosk();
    return;
  }
  if (screens.current !== "call") screens.go("call");
  tiles.setParticipants(joined.consultation.participants);
  if (!kiosk.stream) {
    try {
      kiosk.stream = await openMedia({ video: !kiosk.audioOnly });
    } catch (err) {
      showAlert(t("error.no_devices"));
    }
  }
  if (kiosk.audioOnly) for (const track of kiosk.stream.getVideoTracks()) track.stop();
  const local = kiosk.audioOnly ? new MediaStream(kiosk.stream.getAudioTracks()) : kiosk.stream;
  playStream($("#self-view"), local);
  $("#self-view").hidden = local.getVideoTracks().length === 0;
  $("#camera").hidden = local.getVideoTracks().length === 0;
  $("#tiles").classList.toggle("voice-only", kiosk.audioOnly);
  startMedia(consultation.id, local);
  if (kiosk.tools) kiosk.tools.close();
  kiosk.tools = attachInCallTools({
    role: "outlet",
    signal: kiosk.signal,
    token: kiosk.token,
    consultation: joined.consultation,
    me: claimsOf(kiosk.token).sub,
    getMedia: () => kiosk.media,
    getStream: () => kiosk.stream,
    t,
    root: $('[data-screen="call"]'),
  });
}

function startMedia(consultationId, local) {
  if (kiosk.media) kiosk.media.close();
  const media = new MediaSession({
    signal: kiosk.signal,
    consultationId,
    ice: kiosk.ice,
    localStream: local,
    receiveVideo: !kiosk.audioOnly,
  });
  kiosk.media = media;
  showCallMedia(media, tiles);
  media.start();
}

async function endCall() {
  $("#end").disabled = true;
  const consultation = kiosk.consultation;
  try {
    if (consultation) await kiosk.api.end(consultation.id, "completed");
  } catch (err) {
    console.warn("end failed", err.code);
  }
  showEnded("outlet_ended");
}

function showEnded(reason) {
  closeCall();
  sessionStorage.removeItem(CONSULTATION_KEY);
  if (screens.current !== "ended") screens.go("ended");
  $("#ended-reason").textContent = reason && i18n.has(`ended.${reason}`) ? t(`ended.${reason}`) : "";
  countDown(END_SCREEN_S);
  report.ended().then((waiting) => {
    if (waiting && screens.current === "ended") countDown(REPORT_WAIT_S);
  });
}

/** Count the ended screen down from `seconds`, then reset the kiosk. */
function countDown(seconds) {
  let left = seconds;
  const tick = () => {
    $("#ended-countdown").textContent = t("outlet.ended.countdown", { n: left });
    left -= 1;
    if (left < 0) resetKiosk();
  };
  clearInterval(kiosk.endTimer);
  tick();
  kiosk.endTimer = setInterval(tick, 1000);
}

function closeCall() {
  if (kiosk.tools) kiosk.tools.close();
  kiosk.tools = null;
  if (kiosk.notes) kiosk.notes.close();
  kiosk.notes = null;
  if (kiosk.media) kiosk.media.close();
  kiosk.media = null;
  tiles.clear();
  $("#end").disabled = false;
  $("#reconnecting").hidden = true;
  $("#call-waiting").hidden = false;
  $("#sound-button").hidden = true;
  $("#recording-indicator").hidden = true;
  $("#camera").hidden = false;
  $("#tiles").classList.remove("voice-only");
  controls.reset();
}

/** Back to a clean start screen, ready for the next family. */
function resetKiosk() {
  clearInterval(kiosk.endTimer);
  closeCall();
  stopCheck();
  stopMedia(kiosk.stream);
  kiosk.stream = null;
  kiosk.consultation = null;
  kiosk.service = null;
  kiosk.patient = null;
  kiosk.ticket = null;
  patientStep.reset();
  report.clear();
  $("#consent-patient").textContent = "";
  kiosk.audioOnly = false;
  sessionStorage.removeItem(CONSULTATION_KEY);
  $("#preview").srcObject = null;
  $("#self-view").srcObject = null;
  $("#mic-level").value = 0;
  $("#mic-status").textContent = t("outlet.check.mic_waiting");
  i18n.setLang(i18n.defaultLang, { remember: false });
  if (screens.current !== "start") screens.go("start");
}

// ----- server pushes ------------------------------------------------------------------------

/** Whether a push is about this kiosk's consultation (pushes name it by `consultation_id`). */
function isMine(consultationId) {
  return Boolean(kiosk.consultation) && consultationId === kiosk.consultation.id;
}

function onReady(ready) {
  kiosk.identity = ready.identity;
  const open = resumable(ready).filter((c) => c.state !== "ended");
  const active = open.find((c) => c.state === "active");
  const queued = open.find((c) => c.state === "waiting" || c.state === "offered");
  if (active) {
    if (screens.current === "call" && kiosk.media && kiosk.consultation && kiosk.consultation.id === active.id) {
      // The signaling connection dropped and came back: join again, then publish afresh.
      kiosk.api.join(active.id)
        .then(() => kiosk.media.restart())
        .catch((err) => showAlert(t("error.join", { message: err.message })));
    } else {
      if (screens.current !== "start" && screens.current !== "waiting") resetKiosk();
      enterCall(active);
    }
  } else if (queued) {
    remember(queued);
    if (screens.current === "start") enterWaiting({ state: queued.state });
  } else if (screens.current === "call" || screens.current === "waiting") {
    showEnded("expired");
  }
}

function onUpdated({ consultation }) {
  if (!isMine(consultation.id)) return;
  kiosk.consultation = consultation;
  if (consultation.state === "active" && screens.current === "waiting") {
    enterCall(consultation);
  } else if (screens.current === "call") {
    tiles.setParticipants(consultation.participants || []);
    $("#recording-indicator").hidden = !consultation.recording;
  } else if (screens.current === "waiting") {
    $("#waiting-offered").hidden = consultation.state !== "offered";
  }
}

function bindSignal(signal) {
  kiosk.ice.bind(signal);
  signal.on("session.ready", onReady);
  signal.on("queue.position", (entry) => {
    if (isMine(entry.consultation_id) && screens.current === "waiting") showPosition(entry);
  });
  signal.on("consultation.updated", onUpdated);
  signal.on("consultation.ended", (payload) => {
    if (isMine(payload.consultation_id) && ["waiting", "call"].includes(screens.current)) showEnded(payload.reason);
  });
  signal.on("rtc.media_state", (p) => tiles.setMediaState(p.participant_id, p.source, p.muted));
  signal.on("recording.state", (p) => {
    if (isMine(p.consultation_id)) $("#recording-indicator").hidden = !p.active;
  });
  signal.on("report.finalised", (p) => report.received(p));
  signal.on("status", ({ state }) => {
    if (screens.current === "call" && state === "disconnected") $("#reconnecting").hidden = false;
  });
}

// ----- wiring -------------------------------------------------------------------------------

function resetIdleTimer() {
  clearTimeout(kiosk.idleTimer);
  kiosk.idleTimer = setTimeout(() => {
    if (["check", "service", "patient", "register", "card", "returning", "consent"].includes(screens.current)) resetKiosk();
  }, IDLE_RESET_S * 1000);
}

function bindControls() {
  $("#start-button").addEventListener("click", startCheck);
  $("#check-next").addEventListener("click", () => screens.go("service"));
  for (const button of $$("[data-service]")) {
    button.addEventListener("click", () => chooseService(button.dataset.service));
  }
  for (const box of [$("#guardian-present"), $("#consent-consult")]) box.addEventListener("change", updateCheckInButton);
  $("#check-in").addEventListener("click", checkIn);
  $("#cancel").addEventListener("click", cancelWaiting);
  $("#end").addEventListener("click", endCall);
  $("#ended-home").addEventListener("click", resetKiosk);
  $("#sound-button").addEventListener("click", () => {
    tiles.resumePlayback();
    $("#sound-button").hidden = true;
  });
  for (const button of $$("[data-action=home]")) button.addEventListener("click", resetKiosk);
  $("[data-action=back-check]").addEventListener("click", () => screens.go("check"));
  $("[data-action=back-service]").addEventListener("click", () => screens.go("patient"));
  patientStep.bind();
  report.bind();
  for (const type of ["pointerdown", "keydown"]) document.addEventListener(type, resetIdleTimer);
  i18n.addEventListener("change", () => {
    if (screens.current === "waiting") showPosition(kiosk.lastEntry);
  });
}

async function boot() {
  i18n.bindSwitch();
  bindControls();
  screens.go("start");
  const token = takeToken(TOKEN_KEY);
  if (!token) {
    showAlert(t("error.no_token"));
    $("#start-button").disabled = true;
    return;
  }
  kiosk.token = token;
  kiosk.signal = await connect(token, i18n, { onRefused: () => ($("#start-button").disabled = true) });
  kiosk.api = new Api(kiosk.signal);
  bindSignal(kiosk.signal);
  showTodayOnKiosk(kiosk.signal, $("#kiosk-appointments"), t, startCheck).catch((err) => console.warn("appointments", err.code));
}

boot();
