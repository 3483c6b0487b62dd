// The programme dashboard: figures for a date range from GET /api/stats (admin bearer token),
// totals, a table by outlet, service or clinician, bars by week and the wait distribution
// (Chart.js, loaded by its own script tag as the global `Chart`), CSV and JSON downloads.

import { localDay } from "./appointments.js";
import { I18n } from "./i18n.js";
import { forgetToken, takeToken, wireSignIn } from "./token.js";
import { $, el, showAlert } from "./ui.js";

const TOKEN_KEY = "teleconsult.admin.token";
const charts = { weeks: null, wait: null };
// An admin page: English first, as the service overview.
const i18n = new I18n("en");
const t = (key, vars) => i18n.t(key, vars);
let token = null;
let shown = null;

// Each figure: its key in the reply, its label's string, and how it is shown.
const FIGURES = [
  ["people_served", "dashboard.people_served"],
  ["consultations", "dashboard.consultations"],
  ["wait_p50_s", "dashboard.wait_p50", minutes],
  ["wait_p90_s", "dashboard.wait_p90", minutes],
  ["length_p50_s", "dashboard.length_p50", minutes],
  ["length_p90_s", "dashboard.length_p90", minutes],
  ["appointments", "dashboard.appointments"],
  ["no_shows", "dashboard.no_shows"],
  ["follow_ups_due", "dashboard.follow_ups_due"],
  ["follow_ups_kept", "dashboard.follow_ups_kept"],
  ["reports_finalised", "dashboard.reports_finalised"],
  ["referrals", "dashboard.referrals"],
];

function minutes(seconds) {
  return seconds === null || seconds === undefined ? "–" : t("time.minutes", { n: (seconds / 60).toFixed(1) });
}

function outcomeName(name) {
  return i18n.has(`dashboard.outcome.${name}`) ? t(`dashboard.outcome.${name}`) : name;
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
    throw new Error(t("dashboard.forbidden"));
  }
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error(body.error ? body.error.message : `HTTP ${response.status}`);
  }
  return response;
}

function render(stats) {
  shown = stats;
  sessionStorage.setItem(ZONE_KEY, stats.timezone);
  $("#stats-range").textContent = `${stats.from} – ${stats.to} (${stats.timezone})`;
  $("#stats-totals").replaceChildren(...FIGURES.map(([key, label, format]) =>
    el("div", { dataset: { figure: key } }, el("dt", {}, t(label)), el("dd", {}, format ? format(stats.totals[key]) : String(stats.totals[key])))));
  const outcomes = Object.entries(stats.totals.outcomes).map(([name, n]) => `${outcomeName(name)} ${n}`).join(", ");
  $("#stats-totals").append(el("div", { dataset: { figure: "outcomes" } }, el("dt", {}, t("dashboard.outcomes")), el("dd", { class: "small" }, outcomes || "–")));
  $("#groups-card").hidden = !stats.group_by;
  if (stats.group_by) i18n.say($("#groups-title"), "dashboard.by_group", { group: t(`dashboard.${stats.group_by}`) });
  $("#group-rows").replaceChildren(...stats.groups.map((g) => el("tr", { dataset: { group: g.key } },
    ...[g.key || "–", g.people_served, g.consultations, minutes(g.wait_p50_s), minutes(g.wait_p90_s),
      minutes(g.length_p50_s), g.no_shows, `${g.follow_ups_due} / ${g.follow_ups_kept}`,
      g.reports_finalised, g.referrals].map((v) => el("td", {}, String(v))))));
  drawCharts(stats);
}

function drawCharts(stats) {
  if (typeof window.Chart !== "function") {
    showAlert(t("dashboard.no_charts"));
    return;
  }
  for (const chart of Object.values(charts)) chart?.destroy();
  charts.weeks = new window.Chart($("#chart-weeks"), {
    type: "bar",
    data: {
      labels: stats.weeks.map((w) => w.week_start),
      datasets: [
        { label: t("dashboard.consultations"), data: stats.weeks.map((w) => w.consultations) },
        { label: t("dashboard.no_shows"), data: stats.weeks.map((w) => w.no_shows) },
      ],
    },
    options: { animation: false, responsive: true },
  });
  charts.wait = new window.Chart($("#chart-wait"), {
    type: "bar",
    data: {
      labels: stats.wait_histogram.map((b) => (b.to_min === null
        ? t("dashboard.bucket_open", { from: b.from_min })
        : t("dashboard.bucket", { from: b.from_min, to: b.to_min }))),
      datasets: [{ label: t("dashboard.consultations"), data: stats.wait_histogram.map((b) => b.count) }],
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
i18n.bindSwitch();
// What the page made from the figures (labels, charts) is made again in the new language.
i18n.addEventListener("change", () => { if (shown) render(shown); });
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
