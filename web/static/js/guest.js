// Guest page (/join/<code>): check camera and microphone, redeem the invite for a guest token,
// wait at the door until the specialist admits, then join the call.

import { Api, redeemInvite } from "./api.js";
import { bindCallControls } from "./call_controls.js";
import { LevelMeter, openMedia, stopMedia } from "./devices.js";
import { IceConfig } from "./ice.js";
import { I18n } from "./i18n.js";
import { attachInCallTools } from "./in_call_tools.js";
import { MediaSession } from "./rtc.js";
import { connect } from "./session.js";
import { claimsOf } from "./token.js";
import { showCallMedia, Tiles } from "./tiles.js";
import { $, $$, playStream, Screens, showAlert } from "./ui.js";

const CODE = decodeURIComponent(window.location.pathname.split("/").pop() || "");
const TOKEN_KEY = `teleconsult.guest.${CODE}`;
const browserLang = (navigator.language || "").toLowerCase().startsWith("zh") ? "zh" : "en";

const i18n = new I18n(browserLang);
const t = (key, vars) => i18n.t(key, vars);
const screens = new Screens(document, {
  check: ["door", "call", "done"],
  door: ["call", "done"],
  call: ["done", "door"],
  done: [],
});

const guest = { acknowledged: false, tools: null, signal: null, api: null, token: null, consultationId: null, stream: null, meter: null, media: null, ice: new IceConfig() };
const tiles = new Tiles($("#tiles"), {
  t,
  mainRoles: ["outlet"],
  onAutoplayBlocked: () => ($("#sound-button").hidden = false),
});
const controls = bindCallControls(i18n, () => guest.media);

async function check() {
  screens.go("check");
  try {
    guest.stream = await openMedia({ video: true });
    playStream($("#preview"), guest.stream);
    guest.meter = new LevelMeter(guest.stream, (level) => ($("#mic-level").value = level));
  } catch (err) {
    showAlert(t("error.no_devices"));
  }
  $("#join").disabled = false;
}

async function redeem() {
  const result = await redeemInvite(CODE, $("#guest-name").value.trim() || t("guest.default_name"));
  sessionStorage.setItem(TOKEN_KEY, JSON.stringify({ token: result.token, consultation_id: result.consultation_id }));
  return result;
}

async function join() {
  $("#join").disabled = true;
  try {
    const saved = JSON.parse(sessionStorage.getItem(TOKEN_KEY) || "null") || (await redeem());
    await open(saved);
  } catch (err) {
    showAlert(t(err.code === "expired" || err.code === "not_found" ? "guest.invite_invalid" : "error.generic", { message: err.message }));
    $("#join").disabled = false;
  }
}

async function open({ token, consultation_id: consultationId }) {
  guest.token = token;
  guest.consultationId = consultationId;
  guest.signal = await connect(token, i18n, {
    onRefused: () => {
      sessionStorage.removeItem(TOKEN_KEY);
      finish("guest.invite_invalid");
    },
  });
  guest.api = new Api(guest.signal);
  guest.ice.bind(guest.signal);
  guest.signal.on("session.ready", onReady);
  guest.signal.on("consultation.admitted", () => enterCall());
  guest.signal.on("consultation.refused", () => finish("guest.done.refused"));
  guest.signal.on("consultation.ended", () => finish("guest.done.ended"));
  guest.signal.on("consultation.updated", ({ consultation }) => {
    if (consultation.id !== guest.consultationId) return;
    tiles.setParticipants(consultation.participants || []);
    showRecording(Boolean(consultation.recording));
  });
  guest.signal.on("rtc.media_state", (p) => tiles.setMediaState(p.participant_id, p.source, p.muted));
  guest.signal.on("recording.state", (p) => showRecording(Boolean(p.active)));
}

async function onReady(ready) {
  try {
    const joined = await guest.api.join(guest.consultationId);
    tiles.setParticipants(joined.consultation.participants);
    if (joined.admitted) enterCall();
    else if (screens.current !== "door") {
      screens.go("door");
      playStream($("#door-self"), guest.stream);
    }
  } catch (err) {
    if (["not_found", "invalid_state", "expired", "forbidden"].includes(err.code)) {
      finish("guest.done.ended");
    } else {
      showAlert(t("error.generic", { message: err.message }));
    }
  }
}

/** Recording is shown to everyone; a guest confirms once before being recorded. */
function showRecording(active) {
  $("#recording-indicator").hidden = !active;
  const notice = $("#recording-notice");
  if (active && !guest.acknowledged && !notice.open && screens.current === "call") notice.showModal();
}

async function acknowledgeRecording() {
  try {
    await guest.api.acknowledgeRecording(guest.consultationId);
    guest.acknowledged = true;
    $("#recording-notice").close();
  } catch (err) {
    showAlert(t("error.generic", { message: err.message }));
  }
}

async function enterCall() {
  if (guest.meter) guest.meter.stop();
  guest.meter = null;
  if (screens.current !== "call") screens.go("call");
  if (!guest.stream) guest.stream = await openMedia({ video: true });
  playStream($("#self-view"), guest.stream);
  if (guest.media) {
    guest.media.restart();
    return;
  }
  guest.media = new MediaSession({
    signal: guest.signal,
    consultationId: guest.consultationId,
    ice: guest.ice,
    localStream: guest.stream,
  });
  showCallMedia(guest.media, tiles);
  guest.media.start();
  guest.tools = attachInCallTools({
    role: "guest",
    signal: guest.signal,
    token: guest.token,
    consultation: { id: guest.consultationId },
    me: claimsOf(guest.token).sub,
    getMedia: () => guest.media,
    getStream: () => guest.stream,
    t,
    root: $('[data-screen="call"]'),
  });
  const state = await guest.api.recordingState(guest.consultationId).catch(() => null);
  if (state) showRecording(Boolean(state.active));
}

async function leave() {
  if (guest.signal && guest.consultationId) {
    await guest.api.leave(guest.consultationId).catch(() => {});
  }
  finish("guest.done.left");
}

function finish(messageKey) {
  if (guest.tools) guest.tools.close();
  guest.tools = null;
  if (guest.media) guest.media.close();
  guest.media = null;
  if (guest.meter) guest.meter.stop();
  guest.meter = null;
  if ($("#recording-notice").open) $("#recording-notice").close();
  stopMedia(guest.stream);
  guest.stream = null;
  tiles.clear();
  controls.reset();
  if (guest.signal) guest.signal.close();
  sessionStorage.removeItem(TOKEN_KEY);
  $("#done-text").dataset.i18n = messageKey;
  $("#done-text").textContent = t(messageKey);
  if (screens.current !== "done") screens.go("done");
}

function boot() {
  i18n.bindSwitch();
  $("#join").addEventListener("click", join);
  $("#recording-ok").addEventListener("click", acknowledgeRecording);
  $("#recording-notice").addEventListener("cancel", (e) => e.preventDefault());
  for (const button of $$("[data-action=leave]")) button.addEventListener("click", leave);
  $("#sound-button").addEventListener("click", () => {
    tiles.resumePlayback();
    $("#sound-button").hidden = true;
  });
  const saved = JSON.parse(sessionStorage.getItem(TOKEN_KEY) || "null");
  check().then(() => {
    if (saved) open(saved).catch((err) => showAlert(t("error.generic", { message: err.message })));
  });
}

boot();
