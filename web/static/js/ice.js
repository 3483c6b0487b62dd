// ICE configuration from the server (docs/protocol.md, "Connecting"): STUN servers and this
// connection's own TURN credentials, renewed by `session.ice_servers` before they expire, and the
// transport policy (`relay` forces every call through the TURN server).

const RELAY_PROBE_TIMEOUT_MS = 5000;

export class IceConfig extends EventTarget {
  constructor() {
    super();
    this.servers = [];
    this.policy = "all";
  }

  /** Follow `session.ready` and `session.ice_servers` on this signaling connection. */
  bind(signal) {
    signal.on("session.ready", (ready) => {
      this.servers = ready.ice_servers || [];
      this.policy = ready.ice_transport_policy || "all";
    });
    signal.on("session.ice_servers", (update) => {
      this.servers = update.ice_servers || [];
      this.dispatchEvent(new CustomEvent("renewed", { detail: { servers: this.servers } }));
    });
    return this;
  }

  rtcConfiguration() {
    return { iceServers: this.servers, iceTransportPolicy: this.policy, bundlePolicy: "max-bundle" };
  }

  /** The TURN URLs with their credentials, one entry per URL, UDP first, then TCP, then TLS. */
  turnServers() {
    const order = (url) => (url.startsWith("turns:") ? 2 : /transport=tcp/.test(url) ? 1 : 0);
    const entries = [];
    for (const server of this.servers) {
      const urls = Array.isArray(server.urls) ? server.urls : [server.urls];
      for (const url of urls) {
        if (/^turns?:/.test(url)) entries.push({ url, username: server.username, credential: server.credential });
      }
    }
    return entries.sort((a, b) => order(a.url) - order(b.url));
  }
}

/** How a TURN URL reaches the relay: "udp", "tcp" or "tls". */
export function turnTransport(url) {
  if (url.startsWith("turns:")) return "tls";
  return /transport=tcp/.test(url) ? "tcp" : "udp";
}

/** Whether this browser gets a relayed candidate from one TURN URL (within a few seconds). */
export async function probeRelay({ url, username, credential }, timeoutMs = RELAY_PROBE_TIMEOUT_MS) {
  const pc = new RTCPeerConnection({
    iceServers: [{ urls: url, username, credential }],
    iceTransportPolicy: "relay",
  });
  try {
    const relayed = new Promise((resolve) => {
      pc.addEventListener("icecandidate", (e) => {
        if (e.candidate && / typ relay /.test(e.candidate.candidate)) resolve(true);
        if (!e.candidate) resolve(false);
      });
      setTimeout(() => resolve(false), timeoutMs);
    });
    pc.createDataChannel("probe");
    await pc.setLocalDescription(await pc.createOffer());
    return await relayed;
  } finally {
    pc.close();
  }
}

/**
 * Try the TURN server the way calls would: UDP first, then TCP and TLS.
 * Returns {result: "none_configured" | "direct" | "relay" | "unreachable", transport}.
 * A relay reached over UDP means outbound UDP works, so calls connect directly to the media
 * server (which sits beside the TURN server); relay over TCP/TLS only means calls need the relay.
 */
export async function checkRelay(ice) {
  const servers = ice.turnServers();
  if (servers.length === 0) return { result: "none_configured", transport: null };
  for (const server of servers) {
    if (await probeRelay(server)) {
      const transport = turnTransport(server.url);
      const direct = transport === "udp" && ice.policy !== "relay";
      return { result: direct ? "direct" : "relay", transport };
    }
  }
  return { result: "unreachable", transport: null };
}
