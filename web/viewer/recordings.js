// @ts-check
/**
 * Past broadcasts, as lists: the public "Recent broadcasts" on the live
 * directory and a room's "Past broadcasts" on its page.
 */

import { dateTime, h } from "../ui.js";

/** @typedef {import("../api.js").Recording} Recording */

/**
 * "42 s", "12:05", "1:02:09".
 * @param {number} seconds
 */
export function durationText(seconds) {
  const total = Math.max(0, Math.round(seconds));
  if (total < 60) return `${total} s`;
  const s = String(total % 60).padStart(2, "0");
  const m = Math.floor(total / 60) % 60;
  const hours = Math.floor(total / 3600);
  return hours > 0 ? `${hours}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

/**
 * The replay page of a recording.
 * @param {string} id
 */
export function replayPath(id) {
  return `/replay/${encodeURIComponent(id)}`;
}

/**
 * One recording in a list: the title (a link to the replay once ready),
 * when, how long, and (for members) its state and problems.
 * @param {Recording} recording
 * @param {{members?: boolean, actions?: HTMLElement[]}} [options]
 * @returns {HTMLLIElement}
 */
export function recordingItem(recording, { members = false, actions = [] } = {}) {
  const title = recording.replay
    ? h("a", { href: replayPath(recording.id), class: "recording-link" }, recording.title)
    : h("span", { class: "recording-link" }, recording.title);
  /** @type {import("../ui.js").Child[]} */
  const meta = [dateTime(recording.started_at)];
  if (recording.state === "ready") meta.push(" · ", durationText(recording.duration_seconds));
  if (members && recording.state === "recording") meta.push(" · ", h("span", { class: "tag" }, "recording"));
  if (members && recording.state === "failed") meta.push(" · ", h("span", { class: "tag" }, "nothing recorded"));
  const item = h(
    "li",
    { class: "recording-item", "data-recording": recording.id, "data-state": recording.state },
    h("div", { class: "recording-body" }, h("p", { class: "recording-title" }, title), h("p", { class: "meta" }, ...meta)),
    members && recording.problem ? h("p", { class: "recording-problem meta" }, recording.problem) : null,
    actions.length ? h("div", { class: "actions" }, actions) : null,
  );
  return item;
}
