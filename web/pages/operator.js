// @ts-check
/**
 * The operator's view of this server: rooms in conference and who is in
 * them, broadcasts on air with their viewers, disk use, uptime. Only users
 * granted the operator role (`confcast operator grant USERNAME`) may see it;
 * the server refuses everyone else. Refreshed every few seconds.
 */

import * as api from "../api.js";
import { errorText, h, messageArea, say } from "../ui.js";

/** How often the overview is fetched again. */
const REFRESH_MS = 5000;

/** @param {number | null} bytes */
function size(bytes) {
  if (bytes === null) return "unknown";
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return unit === 0 ? `${value} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

/** @param {number} seconds */
function duration(seconds) {
  const d = Math.floor(seconds / 86400);
  const hh = Math.floor((seconds % 86400) / 3600);
  const mm = Math.floor((seconds % 3600) / 60);
  const ss = seconds % 60;
  if (d > 0) return `${d} d ${hh} h ${mm} min`;
  if (hh > 0) return `${hh} h ${mm} min`;
  if (mm > 0) return `${mm} min ${ss} s`;
  return `${ss} s`;
}

/**
 * A table with a caption, or a sentence when there are no rows.
 * @param {string} caption
 * @param {string[]} headings
 * @param {(string | Node)[][]} rows
 * @param {string} none
 * @param {string} name
 */
function table(caption, headings, rows, none, name) {
  if (rows.length === 0) return h("p", { class: "meta", "data-table": name }, none);
  return h(
    "table",
    { class: "operator-table", "data-table": name },
    h("caption", null, caption),
    h("thead", null, h("tr", null, ...headings.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", null, ...rows.map((cells) => h("tr", null, ...cells.map((c) => h("td", null, c))))),
  );
}

/** @type {import("../router.js").Render} */
export function render({ main, signal }) {
  document.title = "Operator — confcast";
  const message = messageArea("alert");
  const summary = h("dl", { class: "operator-summary" });
  const rooms = h("div", { class: "operator-rooms" });
  const broadcasts = h("div", { class: "operator-broadcasts" });
  const updated = h("p", { class: "meta" });
  const body = h(
    "div",
    { hidden: true },
    summary,
    h("h2", null, "Rooms in conference"),
    rooms,
    h("h2", null, "On air"),
    broadcasts,
    updated,
  );
  const section = h("section", { class: "operator", "data-state": "loading" }, h("h1", null, "Operator"), message, body);
  main.append(section);

  /** @param {api.OperatorOverview} o */
  const show = (o) => {
    const facts = [
      ["Version", `${o.version} (${o.role === "all" ? "everything in one process" : `${o.role} node`})`],
      ["Up for", `${duration(o.uptime_seconds)} (since ${new Date(o.started_at).toLocaleString()})`],
      ["Participants", String(o.rooms.reduce((n, r) => n + r.participants.length, 0))],
      ["Data folder", `${size(o.disk.data_folder_bytes)} used, ${size(o.disk.available_bytes)} free`],
      ["Recordings", `${o.disk.recordings} (${size(o.disk.recordings_bytes)})`],
    ];
    summary.replaceChildren(...facts.flatMap(([k, v]) => [h("dt", null, k), h("dd", null, v)]));
    rooms.replaceChildren(
      table(
        "Rooms with people in their conference",
        ["Room", "Participants", "Who", "On air"],
        o.rooms.map((r) => [
          h("a", { href: `/rooms/${encodeURIComponent(r.id)}` }, r.title || r.id),
          String(r.participants.length),
          r.participants.join(", "),
          r.on_air ? "yes" : "no",
        ]),
        "Nobody is in a conference.",
        "rooms",
      ),
    );
    broadcasts.replaceChildren(
      table(
        "Broadcasts on air",
        ["Title", "Host", "Since", "HLS viewers", "WebRTC viewers"],
        o.broadcasts.map((b) => [
          h("a", { href: `/watch/${encodeURIComponent(b.room_id)}` }, b.title),
          b.host.display_name,
          new Date(b.started_at).toLocaleTimeString(),
          String(b.hls_viewers),
          String(b.webrtc_viewers),
        ]),
        "Nothing is on air.",
        "broadcasts",
      ),
    );
    updated.textContent = `Updated ${new Date().toLocaleTimeString()}; refreshed every ${REFRESH_MS / 1000} s.`;
  };

  /** @type {ReturnType<typeof setTimeout> | null} */
  let timer = null;
  signal.addEventListener("abort", () => {
    if (timer !== null) clearTimeout(timer);
  });
  const load = async () => {
    try {
      const overview = await api.operatorOverview(signal);
      show(overview);
      say(message, "");
      body.hidden = false;
      section.dataset.state = "ready";
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof api.ApiError && err.status === 403) {
        body.hidden = true;
        section.dataset.state = "refused";
        say(message, "Only the site's operators can see this page.", "error");
        return;
      }
      // Keep the last figures, say why they may be stale.
      say(message, `Could not refresh: ${errorText(err)}`, "error");
    }
    if (!signal.aborted) timer = setTimeout(load, REFRESH_MS);
  };
  void load();
}
