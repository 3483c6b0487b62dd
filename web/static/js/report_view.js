// A final report drawn for people: the kiosk's ended screen and printout, the family's phone
// page and the console's history all use this one renderer.

import { el } from "./ui.js";

const LOCALES = { zh: "zh-CN", en: "en-GB" };
// Reports are written and read in China: times are shown on Beijing time wherever the reader is.
const TIME_ZONE = "Asia/Shanghai";

export function formatTime(iso, lang, withTime = true) {
  if (!iso) return "";
  const options = { timeZone: TIME_ZONE, dateStyle: "medium" };
  if (withTime) options.timeStyle = "short";
  return new Intl.DateTimeFormat(LOCALES[lang] || "en-GB", options).format(new Date(iso));
}

/** The label of a findings field: the catalogue's if it has one, else the name made readable. */
export function fieldLabel(i18n, name) {
  const key = `report.field.${name}`;
  return i18n.has(key) ? i18n.t(key) : name.replaceAll("_", " ");
}

function line(i18n, key, value) {
  if (value === null || value === undefined || value === "") return null;
  return el("div", { class: "report-line", dataset: { part: key } },
    el("h3", {}, i18n.t(`report.${key}`)),
    el("p", {}, String(value)));
}

/** An <article> of `report` (the wire object); says so when the family view left the
 * counselling notes out (the clinician did not share them). */
export function renderReport(report, i18n) {
  const t = (key, vars) => i18n.t(key, vars);
  const findings = Object.entries(report.findings || {}).filter(([, value]) => value);
  const withheld = !findings.length && !report.summary && !report.advice && !report.referral;
  const facts = [
    t(`service.${report.service}`),
    formatTime(report.finalised_at || report.saved_at, i18n.lang),
    report.clinician_name,
  ].filter(Boolean).join(" · ");
  return el("article", { class: "report", dataset: { version: String(report.version), status: report.status } },
    el("p", { class: "report-facts" }, facts),
    report.amend_reason
      ? el("p", { class: "report-amended" }, t("report.amended", { version: report.version, reason: report.amend_reason }))
      : null,
    findings.length
      ? el("table", { class: "report-findings" },
        el("caption", {}, t("report.findings")),
        el("tbody", {}, findings.map(([name, value]) =>
          el("tr", {}, el("th", { scope: "row" }, fieldLabel(i18n, name)), el("td", {}, value)))))
      : null,
    line(i18n, "summary", report.summary),
    line(i18n, "advice", report.advice),
    line(i18n, "referral", report.referral),
    report.follow_up_days ? line(i18n, "follow_up", t("report.follow_up_days", { n: report.follow_up_days })) : null,
    withheld ? el("p", { class: "muted report-withheld" }, t("report.withheld")) : null,
  );
}
