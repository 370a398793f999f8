// @ts-check
/**
 * The list of people in the conference: who talks (live), whose
 * microphone or camera is off, whose video is on my screen, and a "Watch"
 * button for each other person (plus "Automatic"). While the host has
 * locked the video the buttons are disabled and show a padlock.
 *
 * Items are updated in place, so a talking indicator going on and off
 * never takes the keyboard focus away from a button.
 */

import { h, replace, roleBadge, uid, userName } from "../ui.js";
import { cameraOffIcon, lockIcon, micOffIcon } from "./icons.js";

/** @typedef {import("./session.js").ConferenceSession} ConferenceSession */
/** @typedef {import("./signalling.js").RosterEntry} RosterEntry */

/**
 * @typedef {object} Item
 * @property {HTMLLIElement} li
 * @property {HTMLSpanElement} name
 * @property {HTMLSpanElement} status
 * @property {HTMLButtonElement | null} watch
 */

/**
 * @param {ConferenceSession} session
 * @returns {{element: HTMLElement, update: () => void}}
 */
export function rosterList(session) {
  const headingId = uid("people-heading");
  const heading = h("h3", { id: headingId }, "People");
  const lockNote = h("p", { class: "lock-note", hidden: true });
  const auto = h("button", { type: "button", class: "secondary", "aria-pressed": "true" }, "Automatic");
  auto.addEventListener("click", () => session.watch(null));
  const autoHint = h(
    "p",
    { class: "hint", id: uid("auto-hint") },
    "Automatic shows whoever speaks (or the host); Watch shows one person's video.",
  );
  auto.setAttribute("aria-describedby", autoHint.id);
  const list = h("ul", { class: "plain-list participant-list" });
  const element = h(
    "section",
    { class: "people", "aria-labelledby": headingId },
    heading,
    lockNote,
    h("div", { class: "actions watch-auto" }, auto),
    autoHint,
    list,
  );

  /** @type {Map<string, Item>} */
  const items = new Map();

  /** @param {RosterEntry} entry */
  function makeItem(entry) {
    const nameId = uid("participant");
    const isMe = entry.username === session.you;
    const name = h("span", { id: nameId, class: "participant-name" });
    const status = h("span", { class: "participant-status" });
    /** @type {HTMLButtonElement | null} */
    let watch = null;
    if (!isMe) {
      const button = h("button", { type: "button", class: "secondary watch", "aria-describedby": nameId, "aria-pressed": "false" }, "Watch");
      button.addEventListener("click", () => {
        session.watch(button.getAttribute("aria-pressed") === "true" ? null : entry.username);
      });
      watch = button;
    }
    const li = h(
      "li",
      { class: "participant", "data-username": entry.username },
      h("span", { class: "talk-dot", "aria-hidden": "true" }),
      name,
      status,
      watch,
    );
    return { li, name, status, watch };
  }

  /**
   * @param {Item} item
   * @param {RosterEntry} entry
   */
  function fill(item, entry) {
    const isMe = entry.username === session.you;
    const locked = session.lock.locked;
    replace(
      item.name,
      userName(entry),
      isMe ? h("span", { class: "tag" }, "you") : null,
      entry.role === "member" ? null : [" ", roleBadge(entry.role)],
    );
    item.li.classList.toggle("is-talking", entry.talking);
    const onScreen = session.selection.source === entry.username;
    item.li.classList.toggle("on-screen", onScreen);
    replace(
      item.status,
      entry.talking ? h("span", { class: "status talking" }, "Talking") : null,
      entry.audio ? null : h("span", { class: "status" }, micOffIcon(), " Microphone off"),
      entry.video ? null : h("span", { class: "status" }, cameraOffIcon(), " Camera off"),
      onScreen ? h("span", { class: "status on-screen-status" }, isMe ? "Your own video on screen" : "On your screen") : null,
    );
    if (item.watch) {
      item.watch.disabled = locked;
      item.watch.setAttribute("aria-pressed", String(session.choice === entry.username));
      replace(item.watch, locked ? lockIcon() : null, "Watch");
      item.watch.title = locked ? "The host has locked the video" : "";
    }
  }

  function update() {
    const roster = session.roster;
    const locked = session.lock.locked;
    heading.textContent = roster.length ? `People (${roster.length})` : "People";
    auto.disabled = locked;
    auto.setAttribute("aria-pressed", String(session.choice === null));
    replace(auto, locked ? lockIcon() : null, "Automatic");
    if (locked) {
      const designated = roster.find((p) => p.username === session.lock.designated);
      replace(
        lockNote,
        h("span", { class: "badge lock-badge" }, lockIcon(), " Locked"),
        " ",
        designated
          ? h("span", null, "Everyone sees ", userName(designated), "; choosing another video is off until the lock ends.")
          : "The video is locked; choosing is off until the lock ends.",
      );
    }
    lockNote.hidden = !locked;

    if (roster.length) list.querySelector(".empty")?.remove();
    const seen = new Set();
    for (const entry of roster) {
      seen.add(entry.username);
      let item = items.get(entry.username);
      if (!item) {
        item = makeItem(entry);
        items.set(entry.username, item);
      }
      fill(item, entry);
    }
    for (const [username, item] of items) {
      if (!seen.has(username)) {
        item.li.remove();
        items.delete(username);
      }
    }
    // Keep the server's order (who came first) without moving nodes needlessly.
    const wanted = roster.map((entry) => /** @type {Item} */ (items.get(entry.username)).li);
    const current = [...list.children];
    if (wanted.length !== current.length || wanted.some((li, i) => li !== current[i])) {
      list.append(...wanted);
    }
    if (!roster.length) replace(list, h("li", { class: "empty" }, "Nobody is here yet."));
  }

  return { element, update };
}
