// @ts-check
/**
 * Small pieces shared by the public viewer pages: the LIVE badge, viewer
 * counts, and how long a room has been on air (kept current by a timer).
 */

import { h } from "../ui.js";

/** How often "on air for …" is redrawn. */
const TICK_MS = 15_000;

/**
 * The red "LIVE" badge (or a grey "Off air" one).
 * @param {boolean} [live]
 * @returns {HTMLSpanElement}
 */
export function liveBadge(live = true) {
  const badge = h("span", { class: "live-badge" });
  setLiveBadge(badge, live);
  return badge;
}

/**
 * @param {HTMLElement} badge made by {@link liveBadge}
 * @param {boolean} live
 */
export function setLiveBadge(badge, live) {
  badge.textContent = live ? "LIVE" : "Off air";
  badge.dataset.live = String(live);
}

/**
 * "1 watching", "12 watching".
 * @param {number} viewers
 */
export function viewersText(viewers) {
  return `${viewers.toLocaleString()} watching`;
}

/**
 * How long ago `startedIso` was, in words: "just started", "12 min",
 * "1 h 05 min", "2 days 3 h". Empty when the time cannot be read.
 * @param {string} startedIso RFC 3339
 * @param {number} [now] milliseconds since the epoch
 */
export function onAirFor(startedIso, now = Date.now()) {
  const started = Date.parse(startedIso);
  if (Number.isNaN(started)) return "";
  const minutes = Math.max(0, Math.floor((now - started) / 60_000));
  if (minutes < 1) return "just started";
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours} h ${String(minutes % 60).padStart(2, "0")} min`;
  const days = Math.floor(hours / 24);
  return `${days} ${days === 1 ? "day" : "days"} ${hours % 24} h`;
}

/**
 * A `<time>` saying how long the room has been on air; call `update` to
 * redraw it (the pages do so with {@link everyTick}).
 * @param {string} startedIso
 * @returns {{element: HTMLTimeElement, update: (startedIso?: string) => void}}
 */
export function onAirTime(startedIso) {
  const element = h("time", { class: "on-air-for" });
  let iso = startedIso;
  const update = (next = iso) => {
    iso = next;
    element.dateTime = iso;
    const text = onAirFor(iso);
    element.textContent = text === "just started" ? "on air: just started" : text ? `on air for ${text}` : "";
    const started = new Date(iso);
    element.title = Number.isNaN(started.getTime())
      ? ""
      : `On air since ${started.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" })}`;
  };
  update();
  return { element, update };
}

/**
 * Calls `redraw` every few seconds until `signal` is aborted.
 * @param {AbortSignal} signal
 * @param {() => void} redraw
 */
export function everyTick(signal, redraw) {
  const timer = setInterval(redraw, TICK_MS);
  signal.addEventListener("abort", () => clearInterval(timer), { once: true });
}
