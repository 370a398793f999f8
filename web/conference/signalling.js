// @ts-check
/**
 * The conference's signalling socket (docs/protocol.md, version 1): one
 * WebSocket per participant at `/api/v1/rooms/{id}/ws`, authenticated by
 * the session cookie, carrying JSON text messages each way. This module
 * knows the message shapes and keeps the socket alive with pings; what the
 * messages mean is up to the caller.
 */

export const PROTOCOL_VERSION = 1;
/** Keep-alive interval. */
const PING_INTERVAL_MS = 20_000;

/**
 * @typedef {object} RosterEntry
 * @property {string} username
 * @property {string} display_name
 * @property {import("../api.js").Role} role
 * @property {boolean} audio microphone on
 * @property {boolean} video camera on
 * @property {boolean} talking
 */

/** @typedef {"auto" | "chosen" | "locked"} SelectionMode */

/**
 * A message from the server.
 * @typedef {{type: "joined", version: number, you: string, role: import("../api.js").Role, sdp: string}
 *   | {type: "roster", participants: RosterEntry[]}
 *   | {type: "selection", source: string | null, mode: SelectionMode}
 *   | {type: "lock", locked: boolean, designated: string | null}
 *   | {type: "talking", username: string, talking: boolean}
 *   | {type: "dominant", username: string | null}
 *   | {type: "notice", code: string, message: string}
 *   | {type: "error", code: string, message: string, request: string | null}
 *   | {type: "pong"}} ServerMessage
 */

/**
 * A message to the server.
 * @typedef {{type: "join", version: number, sdp: string}
 *   | {type: "watch", username: string | null}
 *   | {type: "lock", designated: string}
 *   | {type: "designate", username: string}
 *   | {type: "unlock"}
 *   | {type: "media", audio: boolean, video: boolean}
 *   | {type: "leave"}
 *   | {type: "ping"}} ClientMessage
 */

/**
 * @typedef {object} SignallingHandlers
 * @property {() => void} onOpen
 * @property {(message: ServerMessage) => void} onMessage
 * @property {(event: CloseEvent) => void} onClose the socket closed without
 *   {@link Signalling.close} being called (the server ended it, or the network went)
 */

/**
 * The address of a room's socket on this server.
 * @param {string} roomId
 */
export function socketUrl(roomId) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/api/v1/rooms/${encodeURIComponent(roomId)}/ws`;
}

export class Signalling {
  /**
   * Opens the socket.
   * @param {string} roomId
   * @param {SignallingHandlers} handlers
   */
  constructor(roomId, handlers) {
    this.handlers = handlers;
    this.closed = false;
    /** @type {ReturnType<typeof setInterval> | null} */
    this.pinger = null;
    this.socket = new WebSocket(socketUrl(roomId));
    this.socket.addEventListener("open", () => {
      if (this.closed) return;
      this.pinger = setInterval(() => this.send({ type: "ping" }), PING_INTERVAL_MS);
      handlers.onOpen();
    });
    this.socket.addEventListener("message", (event) => {
      if (this.closed || typeof event.data !== "string") return;
      /** @type {unknown} */
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        console.warn("ignoring a signalling message that is not JSON");
        return;
      }
      if (message && typeof message === "object" && "type" in message && typeof message.type === "string") {
        handlers.onMessage(/** @type {ServerMessage} */ (message));
      }
    });
    this.socket.addEventListener("close", (event) => {
      this.stopPinging();
      if (this.closed) return;
      this.closed = true;
      handlers.onClose(event);
    });
  }

  get open() {
    return !this.closed && this.socket.readyState === WebSocket.OPEN;
  }

  /**
   * Sends a message if the socket is open; returns whether it was sent.
   * @param {ClientMessage} message
   */
  send(message) {
    if (!this.open) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  /** Closes the socket; no handler is called any more. */
  close() {
    if (this.closed) return;
    this.closed = true;
    this.stopPinging();
    try {
      this.socket.close(1000, "bye");
    } catch {
      // not open yet or already closing
    }
  }

  stopPinging() {
    if (this.pinger !== null) clearInterval(this.pinger);
    this.pinger = null;
  }
}
