// @ts-check
/**
 * Who is logged in, and the rooms they are in, as last told by `GET /me`.
 * The session itself is the server's HttpOnly cookie; this is only what the
 * page knows about it.
 */

import * as api from "./api.js";

/** @typedef {import("./api.js").Me} Me */

/** @type {Me | null} */
let current = null;

/** @type {Set<(me: Me | null) => void>} */
const listeners = new Set();

/** @returns {Me | null} */
export function session() {
  return current;
}

/**
 * Sets (or with null clears) what is known about the logged-in user and
 * tells everyone who listens.
 * @param {Me | null} me
 */
export function setSession(me) {
  current = me;
  for (const listener of listeners) listener(me);
}

/**
 * Asks the server who is logged in. A 401 means nobody: the session is then
 * cleared and null returned; other errors are thrown.
 * @param {AbortSignal} [signal]
 * @returns {Promise<Me | null>}
 */
export async function loadSession(signal) {
  try {
    const me = await api.me(signal);
    setSession(me);
    return me;
  } catch (err) {
    if (err instanceof api.ApiError && err.status === 401) {
      setSession(null);
      return null;
    }
    throw err;
  }
}

/**
 * @param {(me: Me | null) => void} listener
 * @param {AbortSignal} [signal] stops listening when aborted
 */
export function onSessionChange(listener, signal) {
  listeners.add(listener);
  signal?.addEventListener("abort", () => listeners.delete(listener), { once: true });
}
