// Tokens come in the URL fragment (never sent to the server) or a sign-in field, and are kept in
// sessionStorage so a reload of the page rejoins.

export function takeToken(storageKey) {
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  const fromUrl = fragment.get("token");
  if (fromUrl) {
    sessionStorage.setItem(storageKey, fromUrl);
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
  return sessionStorage.getItem(storageKey);
}

export function storeToken(storageKey, token) {
  sessionStorage.setItem(storageKey, token);
}

export function forgetToken(storageKey) {
  sessionStorage.removeItem(storageKey);
}

/** Wire the shared sign-in form and sign-out button of the staff pages to ``start(token)``. */
export function wireSignIn(storageKey, start) {
  document.querySelector("#sign-out").addEventListener("click", () => {
    forgetToken(storageKey);
    window.location.reload();
  });
  document.querySelector("#signin-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const token = document.querySelector("#token-input").value.trim();
    if (!token) return;
    storeToken(storageKey, token);
    start(token);
  });
}

/** The claims of a JWT, for display only: the server verifies the signature. */
export function claimsOf(token) {
  try {
    const body = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(decodeURIComponent(escape(atob(body))));
  } catch (err) {
    return null;
  }
}
