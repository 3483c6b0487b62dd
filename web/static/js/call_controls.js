// The call's mute and camera buttons, the same on every page. A press flips the button's
// aria-pressed state and the key of its label (data-i18n), so a later language switch shows the
// label of the state the button is in, and tells the current media session.

import { $ } from "./ui.js";

const CONTROLS = [
  { selector: "#mute", kind: "audio", idle: "call.mute", pressed: "call.unmute" },
  { selector: "#camera", kind: "video", idle: "call.camera_off", pressed: "call.camera_on" },
];

function show(button, control, pressed, i18n) {
  button.setAttribute("aria-pressed", String(pressed));
  button.dataset.i18n = pressed ? control.pressed : control.idle;
  button.textContent = i18n.t(button.dataset.i18n);
}

/**
 * Wire #mute and #camera; `currentMedia()` returns the page's MediaSession (or null).
 * Returns `reset()`, which puts both buttons back to unpressed for the next call.
 */
export function bindCallControls(i18n, currentMedia) {
  for (const control of CONTROLS) {
    const button = $(control.selector);
    button.addEventListener("click", () => {
      const pressed = button.getAttribute("aria-pressed") !== "true";
      show(button, control, pressed, i18n);
      const media = currentMedia();
      if (media) media.setMuted(control.kind, pressed);
    });
  }
  return {
    reset() {
      for (const control of CONTROLS) show($(control.selector), control, false, i18n);
    },
  };
}
