// The outlet's appointment desk: find a child by card code, book a free time, see today's
// appointments (check one in on the kiosk, or cancel it) and who is due back.

import { dayStart, localDay, localTime, setPendingAppointment } from "./appointments.js";
import { I18n } from "./i18n.js";
import { connect } from "./session.js";
import { takeToken } from "./token.js";
import { $, el, showAlert } from "./ui.js";

const TOKEN_KEY = "teleconsult.outlet.token";
// The outlet's own page: Chinese first, as the kiosk.
const i18n = new I18n("zh");
const t = (key, vars) => i18n.t(key, vars);
const desk = { signal: null, zone: "Asia/Shanghai", patient: null, slot: null };

function serviceName(service) {
  return i18n.has(`service.${service}`) ? t(`service.${service}`) : service;
}

function request(event, payload) {
  return desk.signal.request(event, payload);
}

async function lookUp(e) {
  e.preventDefault();
  try {
    const { patient } = await request("patient.lookup", { card_code: $("#card-code").value.trim() });
    desk.patient = patient;
    $("#patient-found").textContent = `${patient.display_name} (${patient.birth_year})`;
    updateBook();
  } catch (err) {
    desk.patient = null;
    $("#patient-found").textContent = err.message;
    updateBook();
  }
}

async function showSlots(e) {
  e?.preventDefault();
  const reply = await request("schedule.get", { date: $("#book-day").value, service: $("#book-service").value.trim() });
  desk.zone = reply.timezone;
  desk.slot = null;
  const free = reply.slots.filter((s) => s.free && new Date(s.start) > new Date());
  $("#slots").replaceChildren(...free.map((slot) => el("button", {
    type: "button", "aria-pressed": "false", dataset: { start: slot.start, clinician: slot.clinician_id },
    onclick: (ev) => choose(slot, ev.currentTarget),
  }, `${localTime(slot.start, desk.zone)} ${slot.clinician_id}`)));
  if (!free.length) $("#slots").replaceChildren(el("p", { class: "muted", dataset: { i18n: "desk.no_slots" } }, t("desk.no_slots")));
  updateBook();
}

function choose(slot, button) {
  desk.slot = slot;
  for (const b of $("#slots").querySelectorAll("button")) b.setAttribute("aria-pressed", String(b === button));
  updateBook();
}

function updateBook() {
  $("#book").disabled = !(desk.patient && desk.slot);
}

async function book() {
  try {
    const { appointment } = await request("appointment.book", {
      patient_id: desk.patient.patient_id, service: desk.slot.service, start: desk.slot.start, clinician_id: desk.slot.clinician_id,
    });
    i18n.say($("#booked"), "desk.booked", { time: localTime(appointment.start, desk.zone, true), clinician: appointment.clinician_id });
    await Promise.all([showSlots(), showToday()]);
  } catch (err) {
    showAlert(err.code === "conflict" ? t("desk.taken") : err.message);
    await showSlots();
  }
}

async function showToday() {
  const day = localDay(desk.zone);
  const from = dayStart(day, desk.zone);
  const to = new Date(from.getTime() + 86_400_000);
  $("#today").textContent = day;
  const { appointments } = await request("appointment.list", { from: from.toISOString(), to: to.toISOString() });
  $("#today-empty").hidden = appointments.length > 0;
  $("#today-list").replaceChildren(...appointments.map((a) => el("li", { dataset: { appointment: a.appointment_id } },
    el("strong", {}, localTime(a.start, desk.zone)),
    el("span", {}, `${serviceName(a.service)} · ${a.clinician_id}`),
    el("span", { class: `status-${a.status}` }, t(`desk.status.${a.status}`)),
    a.status === "booked" ? el("button", { type: "button", class: "primary small", onclick: () => checkIn(a) }, t("desk.check_in")) : null,
    a.status === "booked" ? el("button", { type: "button", class: "small", onclick: () => cancel(a) }, t("desk.cancel")) : null,
  )));
}

function checkIn(appointment) {
  // The kiosk checks the child in (camera check, consent) and sends the booking with it.
  setPendingAppointment(appointment);
  window.location.assign("/outlet");
}

async function cancel(appointment) {
  await request("appointment.cancel", { appointment_id: appointment.appointment_id });
  await showToday();
}

async function showFollowUps() {
  const now = new Date();
  const { follow_ups: due } = await request("appointment.follow_ups", {
    from: new Date(now.getTime() - 60 * 86_400_000).toISOString(), to: new Date(now.getTime() + 14 * 86_400_000).toISOString(),
  });
  $("#follow-ups-empty").hidden = due.length > 0;
  $("#follow-ups").replaceChildren(...due.map((f) => el("li", { dataset: { consultation: f.consultation_id } },
    el("strong", {}, localTime(f.due, desk.zone, true)),
    el("span", {}, `${serviceName(f.service)} · ${f.patient_id.slice(0, 8)}`),
    f.appointment_id ? el("span", { class: "status-checked_in" }, t("desk.status.booked"))
      : el("button", { type: "button", class: "small", onclick: () => propose(f) }, t("desk.book_follow_up")),
  )));
}

async function propose(followUp) {
  const proposal = await request("appointment.propose_follow_up", { consultation_id: followUp.consultation_id });
  if (!proposal.proposal) {
    showAlert(t("desk.no_proposal"));
    return;
  }
  const when = localTime(proposal.proposal.start, desk.zone, true);
  if (!window.confirm(t("desk.confirm", { time: when, clinician: proposal.proposal.clinician_id }))) return;
  await request("appointment.book", {
    patient_id: proposal.patient_id, service: proposal.service, start: proposal.proposal.start,
    clinician_id: proposal.proposal.clinician_id, follow_up_of: proposal.consultation_id,
  });
  await Promise.all([showFollowUps(), showToday()]);
}

async function start() {
  i18n.bindSwitch();
  // The lists are made again in the new language (the rest carries data-i18n).
  i18n.addEventListener("change", () => {
    if (desk.signal) Promise.all([showToday(), showFollowUps()]).catch((err) => showAlert(err.message));
  });
  const token = takeToken(TOKEN_KEY);
  if (!token) {
    showAlert(t("desk.no_token"));
    return;
  }
  desk.signal = await connect(token, i18n);
  $("#book-day").value = localDay(desk.zone);
  $("#lookup-form").addEventListener("submit", lookUp);
  $("#slots-form").addEventListener("submit", (e) => showSlots(e).catch((err) => showAlert(err.message)));
  $("#book").addEventListener("click", book);
  await Promise.all([showToday(), showFollowUps()]).catch((err) => showAlert(err.message));
}

start();
