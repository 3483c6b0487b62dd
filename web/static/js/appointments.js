// Appointments on the kiosk: the booking the clerk chose to check in (the appointment desk keeps
// it in sessionStorage) goes with the kiosk's next check-in, then is forgotten.

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
