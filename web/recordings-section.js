// @ts-check
/**
 * A room's "Past broadcasts" on its page: every recording of the room,
 * newest first, with a replay link once ready; the host can delete one.
 * The list is fetched again now and then (a recording is finished shortly
 * after its broadcast ends) and when a recording problem is reported.
 */

import * as api from "./api.js";
import { onServerEvent } from "./events.js";
import { busy, errorText, h, messageArea, say, uid } from "./ui.js";
import { recordingItem } from "./viewer/recordings.js";

const REFRESH_MS = 20_000;

/**
 * @param {{roomId: string, signal: AbortSignal}} options
 * @returns {{element: HTMLElement, setRole: (role: api.Role | null) => void}}
 */
export function recordingsSection({ roomId, signal }) {
  const heading = uid("recordings-heading");
  const list = h("ul", { class: "plain-list recording-list" });
  const message = messageArea("alert");
  const empty = h("p", { class: "hint" }, "Broadcasts of this room are recorded as they air and appear here.");
  const element = h("section", { class: "card recordings", "aria-labelledby": heading }, h("h2", { id: heading }, "Past broadcasts"), message, empty, list);
  /** @type {api.Role | null} */
  let role = null;
  /** @type {api.Recording[]} */
  let shown = [];

  /** @param {api.Recording} recording */
  const item = (recording) => {
    /** @type {HTMLElement[]} */
    const actions = [];
    if (role === "host" && recording.state !== "recording") {
      const remove = h("button", { type: "button", class: "danger" }, "Delete");
      remove.addEventListener("click", () => {
        if (!confirm(`Delete the recording of “${recording.title}”? This cannot be undone.`)) return;
        say(message, "");
        void busy(remove, async () => {
          try {
            await api.deleteRecording(recording.id);
            await load();
          } catch (err) {
            say(message, errorText(err), "error");
          }
        });
      });
      actions.push(remove);
    }
    return recordingItem(recording, { members: true, actions });
  };

  const draw = () => {
    list.replaceChildren(...shown.map(item));
    empty.hidden = shown.length > 0;
  };

  async function load() {
    try {
      shown = (await api.roomRecordings(roomId, signal)).recordings;
      draw();
    } catch (err) {
      if (!signal.aborted) say(message, errorText(err), "error");
    }
  }

  void load();
  const timer = setInterval(() => void load(), REFRESH_MS);
  signal.addEventListener("abort", () => clearInterval(timer), { once: true });
  onServerEvent(
    "recording_error",
    (data) => {
      if (data.room_id !== roomId) return;
      say(message, data.message, "error");
      void load();
    },
    signal,
  );
  onServerEvent("reconnected", () => void load(), signal);

  return {
    element,
    setRole(next) {
      if (next === role) return;
      role = next;
      draw();
    },
  };
}
