// @ts-check
/**
 * Live now: the public directory of rooms that are on air (no account
 * needed). The list follows the server's directory stream, so rooms appear
 * and disappear, and viewer counts change, without reloading.
 */

import * as api from "../api.js";
import { session } from "../session.js";
import { h } from "../ui.js";
import { followDirectory, watchPath } from "../viewer/directory.js";
import { everyTick, liveBadge, onAirTime, viewersText } from "../viewer/format.js";
import { playIcon, tvIcon } from "../viewer/icons.js";
import { recordingItem } from "../viewer/recordings.js";

/** @typedef {import("../viewer/directory.js").LiveBroadcast} LiveBroadcast */

/**
 * @typedef {object} Card
 * @property {HTMLLIElement} item
 * @property {(broadcast: LiveBroadcast) => void} update
 * @property {() => void} tick
 */

/** @type {import("../router.js").Render} */
export function render({ main, signal }) {
  document.title = "Live now — confcast";

  const stateNote = h("p", { class: "live-connection meta", hidden: true });
  const list = h("ul", { class: "live-grid", "aria-label": "Channels on air", "aria-busy": "true" });
  const empty = emptyState();
  empty.hidden = true;
  // Rooms going on and off air are announced; viewer counts are not.
  const announcer = h("p", { class: "viewer-sr-only", role: "status", "aria-live": "polite" });
  const section = h(
    "section",
    { class: "live-directory", "data-stream": "connecting", "aria-labelledby": "live-heading" },
    h("div", { class: "live-head" }, h("h1", { id: "live-heading" }, "Live now"), stateNote),
    h("p", { class: "live-intro" }, "Channels on air right now. Anyone can watch — no account needed."),
    list,
    empty,
    announcer,
  );
  // Past broadcasts anyone can replay (they were public on air).
  const recentList = h("ul", { class: "plain-list recording-list", "aria-labelledby": "recent-heading" });
  const recent = h(
    "section",
    { class: "recent-broadcasts", "aria-labelledby": "recent-heading", hidden: true },
    h("h2", { id: "recent-heading" }, "Recent broadcasts"),
    recentList,
  );
  main.append(section, recent);

  const loadRecent = async () => {
    try {
      const page = await api.recentRecordings(12, signal);
      recentList.replaceChildren(...page.recordings.map((r) => recordingItem(r)));
      recent.hidden = page.recordings.length === 0;
    } catch (err) {
      if (!signal.aborted) console.warn("could not load recent broadcasts", err);
    }
  };
  void loadRecent();
  /** @type {ReturnType<typeof setTimeout> | null} */
  let recentTimer = null;
  signal.addEventListener("abort", () => {
    if (recentTimer !== null) clearTimeout(recentTimer);
  });

  /** @type {Map<string, Card>} by room id */
  const cards = new Map();
  let first = true;

  /** @param {LiveBroadcast[]} broadcasts */
  const show = (broadcasts) => {
    list.removeAttribute("aria-busy");
    const present = new Set(broadcasts.map((b) => b.room_id));
    /** @type {string[]} */
    const news = [];
    for (const [room, card] of cards) {
      if (present.has(room)) continue;
      // Its recording is finished a moment after it goes off air.
      if (recentTimer !== null) clearTimeout(recentTimer);
      recentTimer = setTimeout(() => void loadRecent(), 3000);
      const title = card.item.querySelector(".live-title")?.textContent ?? "A channel";
      news.push(`${title} went off air.`);
      card.item.remove();
      cards.delete(room);
    }
    // Keep each room's element (and so the focus on its link) across
    // updates; move elements only when the order changed.
    /** @type {Element | null} */
    let next = list.firstElementChild;
    for (const broadcast of broadcasts) {
      let card = cards.get(broadcast.room_id);
      if (card) {
        card.update(broadcast);
      } else {
        card = liveCard(broadcast);
        cards.set(broadcast.room_id, card);
        if (!first) news.push(`${broadcast.title} is now live.`);
      }
      if (card.item !== next) list.insertBefore(card.item, next);
      else next = next.nextElementSibling;
    }
    list.hidden = broadcasts.length === 0;
    empty.hidden = broadcasts.length > 0;
    section.dataset.count = String(broadcasts.length);
    if (news.length > 0) announcer.textContent = news.join(" ");
    first = false;
  };

  followDirectory(signal, {
    onList: show,
    onState(state) {
      section.dataset.stream = state;
      // Connecting is only worth a word once something is shown that may
      // now be stale; a refused stream always is.
      stateNote.hidden = state === "open" || (first && state === "connecting");
      stateNote.textContent = state === "closed" ? "Cannot reach the server; trying again…" : "Reconnecting…";
    },
  });
  everyTick(signal, () => {
    for (const card of cards.values()) card.tick();
  });
}

/**
 * A hue for a room's tile, so neighbouring tiles look different.
 * @param {string} roomId
 */
function hueOf(roomId) {
  let hash = 0;
  for (const char of roomId) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return hash % 360;
}

/**
 * One room on air: a tile, the title (the link to the watch page; the
 * whole card is clickable through it), the host, viewers and time on air.
 * @param {LiveBroadcast} broadcast
 * @returns {Card}
 */
function liveCard(broadcast) {
  const link = h("a", { class: "live-link", href: watchPath(broadcast.room_id) });
  const host = h("span", { class: "display-name" });
  const viewers = h("span", { class: "live-viewers" });
  const time = onAirTime(broadcast.started_at);
  const tile = h("div", { class: "live-tile", "aria-hidden": "true" }, liveBadge(true), playIcon());
  tile.style.setProperty("--hue", String(hueOf(broadcast.room_id)));
  const item = h(
    "li",
    { class: "live-card" },
    h(
      "div",
      { class: "live-card-body" },
      h("h2", { class: "live-title" }, link),
      h("p", { class: "live-host" }, host),
      h("p", { class: "live-stats meta" }, viewers, h("span", { class: "viewer-sep", "aria-hidden": "true" }, " · "), time.element),
    ),
    tile,
  );
  /** @param {LiveBroadcast} next */
  const update = (next) => {
    link.textContent = next.title;
    host.textContent = next.host.display_name;
    host.title = `@${next.host.username}`;
    viewers.textContent = viewersText(next.viewers);
    time.update(next.started_at);
    item.dataset.room = next.room_id;
  };
  update(broadcast);
  return { item, update, tick: () => time.update() };
}

/** What the page says when nobody is on air. */
function emptyState() {
  const loggedIn = session() !== null;
  return h(
    "div",
    { class: "live-empty card" },
    tvIcon(),
    h("h2", null, "Nobody is on air right now"),
    h("p", null, "Channels show up here by themselves as soon as they go live; there is no need to reload."),
    loggedIn
      ? h("p", { class: "meta" }, h("a", { href: "/" }, "Go to your rooms"))
      : h(
          "p",
          { class: "meta" },
          h("a", { href: "/login" }, "Log in"),
          " or ",
          h("a", { href: "/register" }, "register"),
          " to host rooms of your own.",
        ),
  );
}
