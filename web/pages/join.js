// @ts-check
/**
 * `/join/{token}`: the page an invite link opens. Logged in, one button
 * joins the room; otherwise the person is sent to log in or register and
 * comes back here afterwards.
 */

import * as api from "../api.js";
import { session } from "../session.js";
import { busy, errorText, h, messageArea, say } from "../ui.js";

/** @type {import("../router.js").Render} */
export function render({ main, params, navigate }) {
  document.title = "Join a room — confcast";
  const here = `/join/${encodeURIComponent(params.token)}`;
  const next = encodeURIComponent(here);
  const me = session();

  if (!me) {
    main.append(
      h(
        "div",
        { class: "narrow" },
        h("h1", null, "Join a room"),
        h(
          "div",
          { class: "card stack" },
          h("p", null, "You have been given a link to join a room on confcast. Log in or create an account first; you will come back here afterwards."),
          h(
            "p",
            { class: "actions" },
            h("a", { class: "button", href: `/login?next=${next}` }, "Log in to join"),
            h("a", { class: "button secondary", href: `/register?next=${next}` }, "Create an account"),
          ),
        ),
      ),
    );
    return;
  }

  const join = h("button", { type: "button" }, "Join room");
  const message = messageArea("alert");
  join.addEventListener("click", () => {
    say(message, "");
    void busy(join, async () => {
      try {
        const { room } = await api.acceptInviteLink(params.token);
        navigate(`/rooms/${encodeURIComponent(room.id)}`);
      } catch (err) {
        /** @type {Record<number, string>} */
        const known = {
          404: "This invite link is not valid. Ask for a new one.",
          410: "This invite link has expired. Ask for a new one.",
        };
        const status = err instanceof api.ApiError ? err.status : 0;
        say(message, known[status] ?? errorText(err), "error");
      }
    });
  });

  main.append(
    h(
      "div",
      { class: "narrow" },
      h("h1", null, "Join a room"),
      h(
        "div",
        { class: "card stack" },
        h("p", null, "You have been given a link to join a room. Join it as ", h("strong", null, me.user.display_name), "?"),
        message,
        h("div", { class: "actions" }, join, h("a", { href: "/" }, "Not now")),
      ),
    ),
  );
}
