// Small DOM helpers shared by the pages.

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function $$(selector, root = document) {
  return [...root.querySelectorAll(selector)];
}

/** Build an element: el("button", {class: "x", onclick: f}, "text", child). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== undefined && child !== null) node.append(child);
  }
  return node;
}

/** Show `message` in the page's alert region (role=alert), or clear it with null. */
export function showAlert(message) {
  const region = $("#alert");
  if (!region) return;
  region.textContent = message || "";
  region.hidden = !message;
}

export function formatDuration(seconds, t) {
  const s = Math.max(0, Math.round(seconds || 0));
  if (s < 60) return t("time.seconds", { n: s });
  return t("time.minutes", { n: Math.round(s / 60) });
}

/** Attach a stream to a video element and start it; reports blocked autoplay through onBlocked. */
export function playStream(video, stream, onBlocked) {
  if (video.srcObject !== stream) video.srcObject = stream;
  const attempt = video.play();
  if (attempt && onBlocked) attempt.catch(() => onBlocked(video));
}

/** A short two-tone chime through WebAudio (no sound file to ship). */
export function chime() {
  try {
    const context = new AudioContext();
    const now = context.currentTime;
    [880, 660].forEach((frequency, i) => {
      const osc = context.createOscillator();
      const gain = context.createGain();
      osc.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, now + i * 0.25);
      gain.gain.exponentialRampToValueAtTime(0.3, now + i * 0.25 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + i * 0.25 + 0.22);
      osc.connect(gain).connect(context.destination);
      osc.start(now + i * 0.25);
      osc.stop(now + i * 0.25 + 0.25);
    });
    setTimeout(() => context.close(), 800);
  } catch (err) {
    console.warn("chime failed", err);
  }
}

/** A "screen" state machine: exactly one [data-screen] section visible, focus moved to it. */
export class Screens {
  constructor(root, transitions) {
    this.root = root;
    this.transitions = transitions;
    this.current = null;
  }

  go(name) {
    const allowed = this.current === null || (this.transitions[this.current] || []).includes(name);
    if (!allowed) throw new Error(`no transition from ${this.current} to ${name}`);
    this.current = name;
    for (const section of $$("section[data-screen]", this.root)) {
      section.hidden = section.dataset.screen !== name;
    }
    document.body.dataset.screen = name;
    const heading = $(`section[data-screen="${name}"] h1, section[data-screen="${name}"] h2`, this.root);
    if (heading) {
      heading.setAttribute("tabindex", "-1");
      heading.focus({ preventScroll: true });
    }
  }
}
