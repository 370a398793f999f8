// @ts-check
/**
 * The public live directory: which rooms are on air, followed live from
 * `GET /api/v1/live/events` (Server-Sent Events, no account needed). The
 * server sends a `directory` event with the whole list when the stream
 * opens and whenever a room goes on or off air or a viewer count changes.
 *
 * EventSource reconnects by itself after a dropped connection; if the
 * server refuses the stream outright it is opened again here with a growing
 * delay.
 */

import { isLocalPath } from "../router.js";

/**
 * One room on air, as the server lists it.
 * @typedef {object} LiveBroadcast
 * @property {string} room_id
 * @property {string} broadcast_id changes with every broadcast of the room
 * @property {string} title
 * @property {string} description may be empty
 * @property {import("../api.js").UserRef} host
 * @property {string} started_at RFC 3339
 * @property {number} viewers players watching now
 * @property {{hls: string, page: string, whep: string}} playback
 */

/** @typedef {"connecting" | "open" | "closed"} StreamState */

/**
 * @typedef {object} DirectoryHandlers
 * @property {(broadcasts: LiveBroadcast[]) => void} onList the current list, newest first
 * @property {(state: StreamState) => void} [onState] the stream's connection state
 */

export const DIRECTORY_STREAM = "/api/v1/live/events";

const FIRST_RETRY_MS = 1000;
const LAST_RETRY_MS = 30_000;

/**
 * The watch page of a room.
 * @param {string} roomId
 */
export function watchPath(roomId) {
  return `/watch/${encodeURIComponent(roomId)}`;
}

/**
 * The room's stable LL-HLS address: the one the server names when it is a
 * path on this server, else the documented one.
 * @param {LiveBroadcast} broadcast
 */
export function hlsUrl(broadcast) {
  const named = broadcast.playback.hls;
  return isLocalPath(named) ? named : `/hls/${encodeURIComponent(broadcast.room_id)}/index.m3u8`;
}

/**
 * The room's WHEP endpoint (low-latency WebRTC viewing): the one the server
 * names when it is a path on this server, else the documented one.
 * @param {LiveBroadcast} broadcast
 */
export function whepUrl(broadcast) {
  const named = broadcast.playback.whep;
  return isLocalPath(named) ? named : `/api/v1/rooms/${encodeURIComponent(broadcast.room_id)}/whep`;
}

/**
 * @param {unknown} value
 * @returns {value is Record<string, unknown>}
 */
function isObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * One entry of the list, or null when it is not shaped as documented.
 * @param {unknown} raw
 * @returns {LiveBroadcast | null}
 */
function readBroadcast(raw) {
  if (!isObject(raw)) return null;
  const { room_id, broadcast_id, title, description, host, started_at, viewers, playback } = raw;
  if (typeof room_id !== "string" || room_id === "" || typeof broadcast_id !== "string") return null;
  if (typeof title !== "string" || typeof started_at !== "string") return null;
  if (!isObject(host) || typeof host.username !== "string" || typeof host.display_name !== "string") return null;
  const hls = isObject(playback) && typeof playback.hls === "string" ? playback.hls : "";
  const whep = isObject(playback) && typeof playback.whep === "string" ? playback.whep : "";
  return {
    room_id,
    broadcast_id,
    title,
    description: typeof description === "string" ? description : "",
    host: { username: host.username, display_name: host.display_name },
    started_at,
    viewers: typeof viewers === "number" && Number.isFinite(viewers) && viewers >= 0 ? Math.floor(viewers) : 0,
    playback: { hls, page: watchPath(room_id), whep },
  };
}

/**
 * Reads a `directory` event's data; null when it is not the documented JSON.
 * @param {string} data
 * @returns {LiveBroadcast[] | null}
 */
export function parseDirectory(data) {
  /** @type {unknown} */
  let parsed;
  try {
    parsed = JSON.parse(data);
  } catch {
    return null;
  }
  if (!isObject(parsed) || !Array.isArray(parsed.broadcasts)) return null;
  /** @type {LiveBroadcast[]} */
  const list = [];
  for (const raw of parsed.broadcasts) {
    const entry = readBroadcast(raw);
    if (entry) list.push(entry);
  }
  return list;
}

/**
 * Follows the directory until `signal` is aborted.
 * @param {AbortSignal} signal
 * @param {DirectoryHandlers} handlers
 */
export function followDirectory(signal, { onList, onState = () => {} }) {
  /** @type {EventSource | null} */
  let source = null;
  /** @type {ReturnType<typeof setTimeout> | null} */
  let retryTimer = null;
  let retryDelay = FIRST_RETRY_MS;

  const open = () => {
    if (signal.aborted) return;
    const es = new EventSource(DIRECTORY_STREAM);
    source = es;
    onState("connecting");
    es.addEventListener("open", () => {
      retryDelay = FIRST_RETRY_MS;
      onState("open");
    });
    es.addEventListener("directory", (event) => {
      const list = parseDirectory(/** @type {MessageEvent<string>} */ (event).data);
      if (list) onList(list);
      else console.warn("live directory: unreadable event", event);
    });
    es.addEventListener("error", () => {
      if (es.readyState !== EventSource.CLOSED) {
        // A dropped connection: EventSource is already trying again.
        onState("connecting");
        return;
      }
      onState("closed");
      es.close();
      if (source !== es || signal.aborted) return;
      source = null;
      retryTimer = setTimeout(() => {
        retryTimer = null;
        open();
      }, retryDelay);
      retryDelay = Math.min(retryDelay * 2, LAST_RETRY_MS);
    });
  };

  signal.addEventListener(
    "abort",
    () => {
      if (retryTimer !== null) clearTimeout(retryTimer);
      retryTimer = null;
      source?.close();
      source = null;
    },
    { once: true },
  );
  open();
}
