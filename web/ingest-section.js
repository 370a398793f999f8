// @ts-check
/**
 * A room's "Encoders" on its page (host and admins): keys with which an
 * encoder — OBS, a studio camera, any WHIP client — publishes into the room
 * as a participant. A new key's secret is shown once, with the address to
 * give the encoder.
 */

import * as api from "./api.js";
import { busy, dateTime, errorText, field, h, messageArea, replace, say, uid } from "./ui.js";

/**
 * @param {{roomId: string, signal: AbortSignal}} options
 * @returns {{element: HTMLElement, setRole: (role: api.Role | null) => void}}
 */
export function ingestSection({ roomId, signal }) {
  const heading = uid("ingest-heading");
  const list = h("ul", { class: "plain-list ingest-list" });
  const message = messageArea("alert");
  const nameInput = h("input", { name: "name", required: true, maxlength: 50, autocomplete: "off", placeholder: "Studio camera" });
  const createButton = h("button", { type: "submit" }, "Create key");
  const form = h("form", { class: "inline-form" }, field("Encoder name", nameInput), h("div", { class: "actions" }, createButton));
  const secret = h("div", { class: "ingest-secret", hidden: true });
  const element = h(
    "section",
    { class: "card ingest", "aria-labelledby": heading, hidden: true },
    h("h2", { id: heading }, "Encoders"),
    h("p", { class: "hint" }, "Publish into this room from OBS or any WHIP encoder: it joins as a participant you can watch, designate and put on air."),
    form,
    message,
    secret,
    list,
  );
  let loaded = false;

  /** @param {api.IngestKey} key */
  const item = (key) => {
    const remove = h("button", { type: "button", class: "danger" }, "Delete");
    remove.addEventListener("click", () => {
      if (!confirm(`Delete the key “${key.name}”? An encoder using it is disconnected.`)) return;
      say(message, "");
      void busy(remove, async () => {
        try {
          await api.deleteIngestKey(roomId, key.id);
          await refresh();
        } catch (err) {
          say(message, errorText(err), "error");
        }
      });
    });
    return h("li", { class: "ingest-key" }, h("span", null, key.name), h("span", { class: "meta" }, " created ", dateTime(key.created_at)), " ", remove);
  };

  async function refresh() {
    try {
      const { keys } = await api.ingestKeys(roomId, signal);
      replace(list, keys.map(item));
    } catch (err) {
      if (!signal.aborted) say(message, errorText(err), "error");
    }
  }

  /** @param {api.CreatedIngestKey} created */
  function showSecret(created) {
    const url = h("input", { type: "url", readonly: true, value: location.origin + created.whip_url, class: "link-field" });
    const token = h("input", { type: "text", readonly: true, value: created.token, class: "link-field" });
    for (const input of [url, token]) input.addEventListener("focus", () => input.select());
    replace(
      secret,
      field("WHIP address", url),
      field("Bearer token", token, "Shown only now: copy it into the encoder. Anyone with it can publish here."),
    );
    secret.hidden = false;
    token.focus();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    say(message, "");
    void busy(createButton, async () => {
      try {
        const created = await api.createIngestKey(roomId, nameInput.value.trim());
        nameInput.value = "";
        showSecret(created);
        await refresh();
      } catch (err) {
        say(message, errorText(err), "error");
      }
    });
  });

  return {
    element,
    setRole(role) {
      const manages = role === "host" || role === "admin";
      element.hidden = !manages;
      if (manages && !loaded) {
        loaded = true;
        void refresh();
      }
    },
  };
}
