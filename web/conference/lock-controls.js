// @ts-check
/**
 * The host's and admins' control over everyone's video: "Lock" everyone to
 * one participant, "Designate" another while locked, "Unlock" to give
 * everyone their own choice back. The server checks the permission too;
 * this only hides what would be refused.
 */

import { field, h, uid } from "../ui.js";

/** @typedef {import("./session.js").ConferenceSession} ConferenceSession */

/**
 * @param {ConferenceSession} session
 * @returns {{element: HTMLElement, update: () => void}}
 */
export function lockControls(session) {
  const headingId = uid("lock-heading");
  const select = h("select", { name: "designated" });
  const lock = h("button", { type: "submit" }, "Lock");
  const designate = h("button", { type: "submit", hidden: true }, "Designate");
  const unlock = h("button", { type: "button", class: "secondary", hidden: true }, "Unlock");
  const state = h("p", { class: "hint lock-state", role: "status" });
  const form = h(
    "form",
    { class: "inline-form" },
    field("Show everyone", select),
    h("div", { class: "actions" }, lock, designate, unlock),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (select.value) session.direct(select.value);
  });
  unlock.addEventListener("click", () => session.unlock());

  const element = h(
    "section",
    { class: "lock-controls", "aria-labelledby": headingId },
    h("h3", { id: headingId }, "Everyone's video"),
    h(
      "p",
      { class: "hint" },
      "Lock shows everyone the person you pick; nobody can choose another video until you unlock.",
    ),
    form,
    state,
  );

  /** Whether the host picked something in the list since the last lock change. */
  let touched = false;
  select.addEventListener("change", () => {
    touched = true;
  });
  let lastDesignated = /** @type {string | null} */ (null);

  function update() {
    element.hidden = !session.canDirect;
    const { locked, designated } = session.lock;
    if (designated !== lastDesignated) {
      touched = false;
      lastDesignated = designated;
    }
    const keep = touched ? select.value : locked && designated ? designated : select.value;
    select.replaceChildren(
      ...session.roster.map((p) =>
        h("option", { value: p.username }, `${p.display_name} (@${p.username})${p.username === session.you ? " — you" : ""}`),
      ),
    );
    if (session.roster.some((p) => p.username === keep)) select.value = keep;
    else if (!touched) {
      // By default offer someone else than me: that is what a host usually wants to show.
      const other = session.roster.find((p) => p.username !== session.you);
      if (other) select.value = other.username;
    }
    const empty = session.roster.length === 0;
    select.disabled = empty;
    lock.hidden = locked;
    lock.disabled = empty;
    designate.hidden = !locked;
    designate.disabled = empty;
    unlock.hidden = !locked;
    const shown = session.roster.find((p) => p.username === designated);
    const text = locked
      ? `Locked: everyone sees ${shown ? `${shown.display_name} (@${shown.username})` : "the host or whoever speaks"}.`
      : "Not locked: everyone chooses whom they watch.";
    // Unchanged text is not set again, so it is not announced again.
    if (state.textContent !== text) state.textContent = text;
  }

  return { element, update };
}
