// The Socket.IO connection: token auth, acknowledged requests, server pushes as events.

const VENDOR_URL = "/vendor/socket.io/socket.io.esm.min.js";

export class SignalError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

async function loadClient() {
  try {
    const module = await import(VENDOR_URL);
    return module.io;
  } catch (err) {
    throw new SignalError(
      "client_missing",
      "The socket.io client is not installed on the server (run `npm ci` in web/).",
    );
  }
}

/**
 * One authenticated connection. Pushes are re-dispatched as DOM events named after the wire
 * event (`session.ready`, `rtc.offer`, ...); `status` reports connected/disconnected/refused.
 */
export class Signal extends EventTarget {
  static async open(token) {
    const io = await loadClient();
    return new Signal(io, token);
  }

  constructor(io, token) {
    super();
    this.connected = false;
    this.socket = io({
      auth: { token },
      transports: ["websocket", "polling"],
      reconnectionDelay: 500,
      reconnectionDelayMax: 4000,
    });
    this.socket.on("connect", () => this._status("connected"));
    this.socket.on("disconnect", (reason) => this._status("disconnected", { reason }));
    this.socket.on("connect_error", (err) => {
      const code = err && err.data && err.data.code;
      // A refused token will not get better by retrying; a network error will.
      this._status(code ? "refused" : "disconnected", { code, message: err.message });
    });
    this.socket.onAny((event, payload) => {
      this.dispatchEvent(new CustomEvent(event, { detail: payload }));
    });
  }

  _status(state, extra = {}) {
    this.connected = state === "connected";
    this.dispatchEvent(new CustomEvent("status", { detail: { state, ...extra } }));
  }

  on(event, handler) {
    const listener = (e) => handler(e.detail);
    this.addEventListener(event, listener);
    return () => this.removeEventListener(event, listener);
  }

  /** Send one event with its ack; resolves to `ok`, rejects with a SignalError. */
  async request(event, payload = {}, timeoutMs = 10000) {
    let reply;
    try {
      reply = await this.socket.timeout(timeoutMs).emitWithAck(event, payload);
    } catch (err) {
      throw new SignalError("timeout", `No answer from the server to ${event}`);
    }
    if (reply && reply.error) {
      throw new SignalError(reply.error.code, reply.error.message);
    }
    return reply ? reply.ok : undefined;
  }

  close() {
    this.socket.close();
  }
}
