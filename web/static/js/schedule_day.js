// The clinician's day in the console: today's slots of their published hours, each with its
// booking (local times of the programme's zone), refreshed every minute and on demand.

import { localDay, localTime } from "./appointments.js";
import { el } from "./ui.js";

const REFRESH_MS = 60_000;

/** Fill `root` with the clinician's day and keep it current; returns a stop function. */
export function showMyDay(signal, root) {
  const list = el("ol", { class: "appointment-list", id: "my-day-slots" });
  const heading = el("h2", {}, "My day ", el("span", { class: "muted", id: "my-day-date" }));
  root.replaceChildren(heading, list);
  root.hidden = false;

  async function refresh() {
    let zone = "Asia/Shanghai";
    try {
      ({ timezone: zone } = await signal.request("schedule.get", {}));
      const day = localDay(zone);
      const reply = await signal.request("schedule.get", { date: day });
      root.querySelector("#my-day-date").textContent = day;
      const booked = reply.slots.filter((s) => s.appointment);
      list.replaceChildren(...booked.map((slot) => el("li", { dataset: { start: slot.start } },
        el("strong", {}, localTime(slot.start, reply.timezone)),
        el("span", {}, `${slot.service} · ${slot.appointment.outlet_id}`),
        el("span", { class: `status-${slot.appointment.status}` }, slot.appointment.status.replace("_", " ")),
      )));
      const free = reply.slots.length - booked.length;
      list.append(el("li", { class: "muted" }, reply.slots.length ? `${free} free of ${reply.slots.length} slots` : "No clinic hours today."));
    } catch (err) {
      list.replaceChildren(el("li", { class: "muted" }, err.message));
    }
  }

  refresh();
  const timer = setInterval(refresh, REFRESH_MS);
  return () => clearInterval(timer);
}
