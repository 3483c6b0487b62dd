// Admin overview: queues and waits per service, clinicians online, live consultations and each
// consultation's audit trail. Refreshed on every queue/consultation push and every few seconds.

import { Api } from "./api.js";
import { I18n } from "./i18n.js";
import { connect } from "./session.js";
import { claimsOf, forgetToken, takeToken, wireSignIn } from "./token.js";
import { $, el, formatDuration, Screens, showAlert } from "./ui.js";

const TOKEN_KEY = "teleconsult.admin.token";
const REFRESH_MS = 3000;

const i18n = new I18n("en");
const t = (key, vars) => i18n.t(key, vars);
const screens = new Screens(document, { signin: ["overview"], overview: ["signin"] });
const admin = {
  signal: null, api: null, timer: null, pushTimer: null, overview: null,
  // The audit trail shown: its consultation, how many entries are read (oldest first), whether
  // the server has more pages after them, and which opening of a trail is shown / being read.
  auditFor: null, auditShown: 0, auditMore: false, auditOpened: 0, auditReading: null,
};

function cells(...values) {
  return values.map((value) => el("td", {}, value));
}

function render() {
  const overview = admin.overview;
  if (!overview) return;
  const queues = Object.entries(overview.queues);
  $("#queue-rows").replaceChildren(...queues.map(([service, entries]) => {
    const longest = Math.max(0, ...entries.map((e) => e.waiting_s || 0));
    const estimates = entries.map((e) => e.estimated_wait_s).filter((v) => v !== null && v !== undefined);
    return el("tr", { dataset: { service } }, cells(
      t(`service.${service}`),
      String(entries.length),
      formatDuration(longest, t),
      estimates.length ? formatDuration(Math.max(...estimates), t) : "–",
    ));
  }));
  if (!queues.length) $("#queue-rows").replaceChildren(el("tr", {}, el("td", { colspan: "4" }, t("console.queue.empty"))));
  $("#clinician-rows").replaceChildren(...overview.clinicians.map((c) =>
    el("tr", { dataset: { clinician: c.clinician_id } }, cells(
      c.name,
      t(`role.${c.role}`),
      el("span", { class: `status status-${c.status}` }, t(`presence.${c.status}`)),
      c.services.map((s) => t(`service.${s}`)).join(", "),
    ))));
  const live = overview.active;
  $("#live-empty").hidden = live.length > 0;
  $("#live-rows").replaceChildren(...live.map((c) =>
    el("tr", { dataset: { consultation: c.id } }, cells(
      c.id,
      t(`service.${c.service}`),
      c.outlet_id,
      c.clinician_id || "–",
      (c.participants || []).map((p) => `${p.name} (${t(`role.${p.role}`)}${p.connected ? "" : ", " + t("admin.away")})`).join(", "),
      c.recording ? t("app.yes") : t("app.no"),
      el("button", { type: "button", class: "small", onclick: () => showAudit(c.id) }, t("admin.audit_show")),
    ))));
  renderNodes(overview.nodes);
  $("#updated").textContent = t("admin.updated", { time: new Date().toLocaleTimeString("en-GB") });
}

/** The cluster's nodes (only with a Redis store: a single process has none to list). */
function renderNodes(nodes) {
  $("#nodes-card").hidden = !nodes;
  if (!nodes) return;
  $("#node-rows").replaceChildren(...nodes.map((n) => {
    const state = !n.live ? "lost" : n.draining ? "draining" : "live";
    const load = n.load || {};
    return el("tr", { dataset: { node: n.node_id } }, cells(
      n.node_id,
      el("span", { class: `status node-${state}` }, t(`admin.node_${state}`)),
      `${n.consultations} / ${n.capacity ?? "–"}`,
      String(load.peers ?? "–"),
      load.cpu_pct === undefined ? "–" : `${load.cpu_pct} %`,
    ));
  }));
}

async function refresh() {
  try {
    admin.overview = await admin.api.overview();
    render();
    // The trail only grows at its end: once every page is read, read what came after it.
    if (admin.auditFor && !admin.auditMore) await loadAudit();
  } catch (err) {
    showAlert(t("error.generic", { message: err.message }));
  }
}

async function showAudit(consultationId) {
  admin.auditFor = consultationId;
  admin.auditShown = 0;
  admin.auditMore = false;
  admin.auditOpened += 1;
  $("#audit-table").hidden = false;
  $("#audit-input").value = consultationId;
  $("#audit-id").textContent = `· ${consultationId}`;
  $("#audit-rows").replaceChildren();
  await loadAudit();
  $("#audit-card h2").setAttribute("tabindex", "-1");
  $("#audit-card h2").focus();
}

/** Reads the page after the entries shown and appends it (the first page for a new trail). */
async function loadAudit() {
  const opened = admin.auditOpened;
  // A refresh and a click must not read one page of this trail twice.
  if (admin.auditReading === opened) return;
  admin.auditReading = opened;
  try {
    const page = await admin.api.listAudit(admin.auditFor, admin.auditShown);
    if (opened !== admin.auditOpened) return; // a trail was opened meanwhile
    admin.auditShown += page.events.length;
    admin.auditMore = page.next_cursor !== null;
    $("#audit-more").hidden = !admin.auditMore;
    $("#audit-rows").append(...page.events.map((e) =>
      el("tr", {}, cells(
        new Date(e.at).toLocaleString("en-GB"),
        e.actor,
        e.role,
        e.action,
        Object.entries(e.details || {}).map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join("; "),
      ))));
  } catch (err) {
    showAlert(t("error.generic", { message: err.message }));
  } finally {
    if (admin.auditReading === opened) admin.auditReading = null;
  }
}

async function start(token) {
  const claims = claimsOf(token);
  if (!claims || claims.role !== "admin") {
    showAlert(t("error.wrong_role"));
    screens.go("signin");
    return;
  }
  screens.go("overview");
  admin.signal = await connect(token, i18n, {
    onRefused: () => {
      forgetToken(TOKEN_KEY);
      clearInterval(admin.timer);
      admin.signal.close();
      screens.go("signin");
    },
  });
  admin.api = new Api(admin.signal);
  admin.signal.on("session.ready", refresh);
  // Pushes only say "something changed": coalesce bursts into one overview request.
  for (const event of ["queue.changed", "consultation.updated", "consultation.ended"]) {
    admin.signal.on(event, () => {
      clearTimeout(admin.pushTimer);
      admin.pushTimer = setTimeout(refresh, 300);
    });
  }
  admin.timer = setInterval(() => {
    if (admin.signal.connected) refresh();
  }, REFRESH_MS);
}

function boot() {
  i18n.bindSwitch();
  i18n.addEventListener("change", render);
  $("#audit-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const id = $("#audit-input").value.trim();
    if (id) showAudit(id);
  });
  $("#audit-more").addEventListener("click", () => loadAudit());
  wireSignIn(TOKEN_KEY, start);
  const token = takeToken(TOKEN_KEY);
  if (token) start(token);
  else screens.go("signin");
}

boot();
