// @ts-check
/**
 * The logged-in user's live events from `GET /api/v1/events`
 * (Server-Sent Events). EventSource reconnects by itself after a network
 * error; if the server refuses the stream outright it is retried here with
 * a growing delay. After any reconnect a `reconnected` event is sent to
 * listeners, since events may have been missed meanwhile.
 *
 * The state of the stream is kept in `data-events` on the root element
 * ("connecting", "open" or "closed") for styles and tests to read.
 */

/** @typedef {import("./api.js").Invitation} Invitation */

/**
 * @typedef {object} ServerEvents
 * @property {Invitation} invitation someone is inviting me: ring
 * @property {Invitation} invitation_updated an invitation I sent or received changed status
 * @property {Record<string, never>} rooms_changed my room list changed
 * @property {{room_id: string, broadcast_id: string, message: string}} recording_error
 *   a broadcast I host or started cannot be (fully) recorded; it stays live
 * @property {null} reconnected the stream was lost and is back: refetch what is shown
 */

/** @typedef {keyof ServerEvents} EventName */

const STREAM_URL = "/api/v1/events";
/** @type {EventName[]} */
const SERVER_EVENTS = ["invitation", "invitation_updated", "rooms_changed", "recording_error"];

/** @type {EventSource | null} */
let source = null;
/** @type {ReturnType<typeof setTimeout> | null} */
let retryTimer = null;
let retryDelay = 1000;
let wasConnected = false;
let lostConnection = false;

/** @type {Map<EventName, Set<(data: any) => void>>} */
const handlers = new Map();

/**
 * @param {EventName} name
 * @param {unknown} data
 */
function dispatch(name, data) {
  for (const handler of handlers.get(name) ?? []) {
    try {
      handler(data);
    } catch (err) {
      console.error(`handler for ${name} failed`, err);
    }
  }
}

/** @param {"connecting" | "open" | "closed"} state */
function mark(state) {
  document.documentElement.dataset.events = state;
}

function open() {
  const es = new EventSource(STREAM_URL, { withCredentials: true });
  source = es;
  mark("connecting");
  es.addEventListener("open", () => {
    mark("open");
    retryDelay = 1000;
    if (wasConnected && lostConnection) dispatch("reconnected", null);
    wasConnected = true;
    lostConnection = false;
  });
  es.addEventListener("error", () => {
    lostConnection = true;
    mark(es.readyState === EventSource.CLOSED ? "closed" : "connecting");
    if (es.readyState === EventSource.CLOSED && source === es) {
      // The server refused the stream (not a dropped connection, which
      // EventSource retries on its own): try again later.
      source = null;
      retryTimer = setTimeout(() => {
        retryTimer = null;
        open();
      }, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 60_000);
    }
  });
  for (const name of SERVER_EVENTS) {
    es.addEventListener(name, (event) => {
      let data = null;
      try {
        data = JSON.parse(/** @type {MessageEvent<string>} */ (event).data || "null");
      } catch {
        console.warn(`ignoring ${name} event that is not JSON`);
        return;
      }
      dispatch(name, data);
    });
  }
}

/** Opens the stream if it is not open yet (call once logged in). */
export function connectEvents() {
  if (source || retryTimer) return;
  wasConnected = false;
  lostConnection = false;
  retryDelay = 1000;
  open();
}

/** Closes the stream (call on logging out). */
export function disconnectEvents() {
  if (retryTimer) clearTimeout(retryTimer);
  retryTimer = null;
  source?.close();
  source = null;
  mark("closed");
}

/**
 * Calls `handler` for each event of the given name until `signal` aborts.
 * @template {EventName} K
 * @param {K} name
 * @param {(data: ServerEvents[K]) => void} handler
 * @param {AbortSignal} signal
 */
export function onServerEvent(name, handler, signal) {
  let set = handlers.get(name);
  if (!set) {
    set = new Set();
    handlers.set(name, set);
  }
  const own = set;
  own.add(handler);
  signal.addEventListener("abort", () => own.delete(handler), { once: true });
}
