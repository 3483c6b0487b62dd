// Text in one catalogue per language (i18n/en.js, i18n/zh.js); elements name their string with
// data-i18n (text, with placeholders from data-i18n-vars JSON), data-i18n-label (aria-label) or data-i18n-placeholder.

import en from "../i18n/en.js";
import toolsEn from "../i18n/tools_en.js";
import toolsZh from "../i18n/tools_zh.js";
import zh from "../i18n/zh.js";

// The in-call tools keep their strings in their own catalogues.
const CATALOGUES = { en: { ...en, ...toolsEn }, zh: { ...zh, ...toolsZh } };
const HTML_LANG = { en: "en", zh: "zh-CN" };
const STORAGE_KEY = "teleconsult.lang";

export class I18n extends EventTarget {
  constructor(defaultLang) {
    super();
    this.defaultLang = defaultLang;
    const saved = localStorage.getItem(STORAGE_KEY);
    this.lang = CATALOGUES[saved] ? saved : defaultLang;
  }

  /** The string for `key` with `{name}` placeholders filled; English, then the key, as fallback. */
  t(key, vars = {}) {
    const text = CATALOGUES[this.lang][key] ?? CATALOGUES.en[key] ?? key;
    return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
  }

  has(key) {
    return key in CATALOGUES[this.lang] || key in CATALOGUES.en;
  }

  /** Show `key`'s text in `node` and keep it translated on a switch; `null` empties and hides it. */
  say(node, key, vars = {}) {
    node.hidden = !key;
    node.textContent = key ? this.t(key, vars) : "";
    if (key) {
      node.dataset.i18n = key;
      node.dataset.i18nVars = JSON.stringify(vars);
    } else {
      delete node.dataset.i18n;
      delete node.dataset.i18nVars;
    }
  }

  setLang(lang, { remember = true } = {}) {
    if (!CATALOGUES[lang]) return;
    this.lang = lang;
    if (remember) localStorage.setItem(STORAGE_KEY, lang);
    this.apply();
    this.dispatchEvent(new CustomEvent("change", { detail: { lang } }));
  }

  apply(root = document) {
    document.documentElement.lang = HTML_LANG[this.lang];
    for (const node of root.querySelectorAll("[data-i18n]")) {
      const vars = node.dataset.i18nVars ? JSON.parse(node.dataset.i18nVars) : undefined;
      node.textContent = this.t(node.dataset.i18n, vars);
    }
    for (const node of root.querySelectorAll("[data-i18n-label]")) {
      node.setAttribute("aria-label", this.t(node.dataset.i18nLabel));
    }
    for (const node of root.querySelectorAll("[data-i18n-placeholder]")) {
      node.setAttribute("placeholder", this.t(node.dataset.i18nPlaceholder));
    }
    for (const button of root.querySelectorAll("[data-lang]")) {
      button.setAttribute("aria-pressed", String(button.dataset.lang === this.lang));
    }
  }

  /** Wire the page's language buttons ([data-lang]). */
  bindSwitch(root = document) {
    for (const button of root.querySelectorAll("[data-lang]")) {
      button.addEventListener("click", () => this.setLang(button.dataset.lang));
    }
    this.apply(root);
  }
}
