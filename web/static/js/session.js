// What every page does on load: take the token, open the signaling connection, show its state.

import { Signal } from "./signal.js";
import { $, showAlert } from "./ui.js";

/** Open the connection and keep the header's status pill (#connection) up to date. */
export async function connect(token, i18n, { onRefused } = {}) {
  let signal;
  try {
    signal = await Signal.open(token);
  } catch (err) {
    showAlert(i18n.t("error.client_missing"));
    setPill(i18n, "refused");
    throw err;
  }
  signal.on("status", ({ state, code }) => {
    setPill(i18n, state);
    if (state === "refused") {
      showAlert(i18n.has(`error.${code}`) ? i18n.t(`error.${code}`) : i18n.t("error.generic", { message: code }));
      if (onRefused) onRefused(code);
    } else if (state === "connected") {
      showAlert(null);
    }
  });
  i18n.addEventListener("change", () => setPill(i18n, $("#connection").dataset.state));
  return signal;
}

function setPill(i18n, state) {
  const pill = $("#connection");
  if (!pill) return;
  pill.dataset.state = state;
  pill.textContent = i18n.t(`conn.${state}`);
}
