// The programme dashboard: figures for a date range from GET /api/stats (admin bearer token),
// totals, a table by outlet, service or clinician, bars by week and the wait distribution
// (Chart.js, loaded by its own script tag as the global `Chart`), CSV and JSON downloads.

import { localDay } from "./appointments.js";
import { forgetToken, takeToken, wireSignIn } from "./token.js";
import { $, el, showAlert } from "./ui.js";

const TOKEN_KEY = "teleconsult.admin.token";
const charts = { weeks: null, wait: null };
let token = null;

const FIGURES = [
  ["people_served", "People served"],
  ["consultations", "Consultations"],
  ["wait_p50_s", "Wait p50", minutes],
  ["wait_p90_s", "Wait p90", minutes],
  ["length_p50_s", "Length p50", minutes],
  ["length_p90_s", "Length p90", minutes],
  ["appointments", "Appointments"],
  ["no_shows", "No-shows"],
  ["follow_ups_due", "Follow-ups due"],
  ["follow_ups_kept", "Follow-ups kept"],
  ["reports_finalised", "Reports finalised"],
  ["referrals", "Referrals"],
];

function minutes(seconds) {
  return seconds === null || seconds === undefined ? "–" : `${(seconds / 60).toFixed(1)} min`;
}

function show(screen) {
  for (const section of document.querySelectorAll("[data-screen]")) {
    if (section.tagName !== "BODY") section.hidden = section.dataset.screen !== screen;
  }
  document.body.dataset.screen = screen;
}

function query(format) {
  const params = new URLSearchParams({ from: $("#stats-from").value, to: $("#stats-to").value });
  const optional = { group_by: "#stats-group", outlet_id: "#stats-outlet", service: "#stats-service", clinician_id: "#stats-clinician" };
  for (const [name, selector] of Object.entries(optional)) {
    const value = $(selector).value.trim();
    if (value) params.set(name, value);
  }
  if (format) params.set("format", format);
  return `/api/stats?${params}`;
}

async function fetchStats(format) {
  const response = await fetch(query(format), { headers: { Authorization: `Bearer ${token}` } });
  if (response.status === 401 || response.status === 403) {
    forgetToken(TOKEN_KEY);
    show("signin");
    throw new Error("this token may not read the programme figures");
  }
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error(body.error ? body.error.message : `HTTP ${response.status}`);
  }
  return response;
}

function render(stats) {
  sessionStorage.setItem(ZONE_KEY, stats.timezone);
  $("#stats-range").textContent = `${stats.from} – ${stats.to} (${stats.timezone})`;
  $("#stats-totals").replaceChildren(...FIGURES.map(([key, label, format]) =>
    el("div", { dataset: { figure: key } }, el("dt", {}, label), el("dd", {}, format ? format(stats.totals[key]) : String(stats.totals[key])))));
  const outcomes = Object.entries(stats.totals.outcomes).map(([name, n]) => `${name} ${n}`).join(", ");
  $("#stats-totals").append(el("div", { dataset: { figure: "outcomes" } }, el("dt", {}, "Outcomes"), el("dd", { class: "small" }, outcomes || "–")));
  $("#groups-card").hidden = !stats.group_by;
  $("#groups-title").textContent = `By ${stats.group_by || "group"}`;
  $("#group-rows").replaceChildren(...stats.groups.map((g) => el("tr", { dataset: { group: g.key } },
    ...[g.key || "–", g.people_served, g.consultations, minutes(g.wait_p50_s), minutes(g.wait_p90_s),
      minutes(g.length_p50_s), g.no_shows, `${g.follow_ups_due} / ${g.follow_ups_kept}`,
      g.reports_finalised, g.referrals].map((v) => el("td", {}, String(v))))));
  drawCharts(stats);
}

function drawCharts(stats) {
  if (typeof window.Chart !== "function") {
    showAlert("The charts library is not installed on the server (npm ci in web/).");
    return;
  }
  for (const chart of Object.values(charts)) chart?.destroy();
  charts.weeks = new window.Chart($("#chart-weeks"), {
    type: "bar",
    data: {
      labels: stats.weeks.map((w) => w.week_start),
      datasets: [
        { label: "Consultations", data: stats.weeks.map((w) => w.consultations) },
        { label: "No-shows", data: stats.weeks.map((w) => w.no_shows) },
      ],
    },
    options: { animation: false, responsive: true },
  });
  charts.wait = new window.Chart($("#chart-wait"), {
    type: "bar",
    data: {
      labels: stats.wait_histogram.map((b) => (b.to_min === null ? `${b.from_min}+ min` : `${b.from_min}–${b.to_min} min`)),
      datasets: [{ label: "Consultations", data: stats.wait_histogram.map((b) => b.count) }],
    },
    options: { animation: false, responsive: true },
  });
}

async function refresh() {
  try {
    render(await (await fetchStats()).json());
    showAlert(null);
  } catch (err) {
    showAlert(err.message);
  }
}

async function download(format) {
  try {
    const response = await fetchStats(format);
    const blob = format === "csv" ? await response.blob() : new Blob([await response.text()], { type: "application/json" });
    const link = el("a", { href: URL.createObjectURL(blob), download: `programme-${$("#stats-from").value}-${$("#stats-to").value}.${format}` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  } catch (err) {
    showAlert(err.message);
  }
}

function start(value) {
  token = value;
  show("figures");
  refresh();
}

// Days are the programme's (the server names its zone in every reply; remembered for the next
// visit), not the browser's.
const ZONE_KEY = "teleconsult.programme.zone";
const zone = sessionStorage.getItem(ZONE_KEY) || "Asia/Shanghai";
const today = new Date();
$("#stats-to").value = localDay(zone, today);
$("#stats-from").value = localDay(zone, new Date(today.getTime() - 90 * 86_400_000));
$("#stats-form").addEventListener("submit", (e) => { e.preventDefault(); refresh(); });
$("#stats-csv").addEventListener("click", () => download("csv"));
$("#stats-json").addEventListener("click", () => download("json"));
wireSignIn(TOKEN_KEY, start);
const stored = takeToken(TOKEN_KEY);
if (stored) start(stored);
else show("signin");
