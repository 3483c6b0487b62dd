// Appointments on the kiosk: the booking the clerk chose to check in (the appointment desk keeps
// it in sessionStorage) goes with the kiosk's next check-in, then is forgotten.

import { el } from "./ui.js";

const PENDING_KEY = "teleconsult.outlet.appointment";

/** The booking to check in next: {appointment_id, service, start} or null. */
export function pendingAppointment() {
  try {
    return JSON.parse(sessionStorage.getItem(PENDING_KEY) || "null");
  } catch {
    return null;
  }
}

export function setPendingAppointment(appointment) {
  sessionStorage.setItem(PENDING_KEY, JSON.stringify({
    appointment_id: appointment.appointment_id, service: appointment.service, start: appointment.start,
  }));
}

export function clearPendingAppointment() {
  sessionStorage.removeItem(PENDING_KEY);
}

/** A UTC instant as the programme's local time (the server names the zone). */
export function localTime(iso, timeZone, withDay = false) {
  const options = { timeZone, hour: "2-digit", minute: "2-digit", hour12: false };
  if (withDay) Object.assign(options, { year: "numeric", month: "2-digit", day: "2-digit" });
  return new Intl.DateTimeFormat("en-CA", options).format(new Date(iso));
}

/** Today's date (YYYY-MM-DD) in a time zone. */
export function localDay(timeZone, date = new Date()) {
  return new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" }).format(date);
}

/** The UTC instant a local day of the zone begins (for appointment.list windows). */
export function dayStart(day, timeZone) {
  // Noon UTC of that day, shifted by the zone's offset at that time, gives local midnight.
  const noon = new Date(`${day}T12:00:00Z`);
  const local = new Date(noon.toLocaleString("en-US", { timeZone }));
  const utc = new Date(noon.toLocaleString("en-US", { timeZone: "UTC" }));
  const offsetMs = local - utc;
  return new Date(Date.parse(`${day}T00:00:00Z`) - offsetMs);
}

/** Today's bookings still to check in, on the kiosk's start screen (times and services only: the
 * screen is public); choosing one keeps it for the check-in and starts the kiosk's flow. */
export async function showTodayOnKiosk(signal, root, t, start) {
  const { timezone } = await signal.request("schedule.get", {});
  const from = dayStart(localDay(timezone), timezone);
  const to = new Date(from.getTime() + 86_400_000);
  const { appointments } = await signal.request("appointment.list", { from: from.toISOString(), to: to.toISOString() });
  const waiting = appointments.filter((a) => a.status === "booked");
  root.hidden = waiting.length === 0;
  root.querySelector("ul").replaceChildren(...waiting.map((a) => el("li", { dataset: { appointment: a.appointment_id } },
    el("strong", {}, localTime(a.start, timezone)),
    // data-i18n: the page's language switch translates them again.
    el("span", { dataset: { i18n: `service.${a.service}` } }, t(`service.${a.service}`)),
    el("button", {
      type: "button", dataset: { i18n: "outlet.appointments.mine" }, onclick: () => { setPendingAppointment(a); start(); },
    }, t("outlet.appointments.mine")),
  )));
}
