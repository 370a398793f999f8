// @ts-check
/**
 * The registration page. A new account comes with its own personal room;
 * afterwards the user is logged in and goes on to `?next=` or home.
 */

import * as api from "../api.js";
import { isLocalPath } from "../router.js";
import { loadSession } from "../session.js";
import { busy, errorText, field, h, messageArea, say } from "../ui.js";

/** @type {import("../router.js").Render} */
export function render({ main, query, navigate }) {
  document.title = "Register — confcast";
  const next = query.get("next");
  const target = isLocalPath(next) ? next : "/";

  const username = h("input", {
    name: "username",
    autocomplete: "username",
    autocapitalize: "none",
    spellcheck: "false",
    required: true,
    maxlength: 32,
  });
  const displayName = h("input", { name: "display_name", autocomplete: "name", required: true, maxlength: 64 });
  const password = h("input", { type: "password", name: "password", autocomplete: "new-password", required: true });
  const submit = h("button", { type: "submit" }, "Register");
  const message = messageArea("alert");

  const form = h(
    "form",
    { class: "card stack", "aria-labelledby": "register-heading" },
    field("Username", username, "3 to 32 characters: letters a-z, digits, '_', '.' and '-'. Others find you by it."),
    field("Display name", displayName, "How others see you, e.g. your full name."),
    field("Password", password, "At least 8 characters."),
    message,
    h("div", { class: "actions" }, submit),
  );

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    say(message, "");
    void busy(submit, async () => {
      try {
        await api.register({
          username: username.value.trim(),
          display_name: displayName.value.trim(),
          password: password.value,
        });
        await loadSession();
        navigate(target, { replace: true });
      } catch (err) {
        if (err instanceof api.ApiError && err.code === "username_taken") {
          say(message, `${err.message} — please choose another username.`, "error");
          username.focus();
          username.select();
        } else {
          say(message, errorText(err), "error");
        }
      }
    });
  });

  const loginHref = target === "/" ? "/login" : `/login?next=${encodeURIComponent(target)}`;
  main.append(
    h(
      "div",
      { class: "narrow" },
      h("h1", { id: "register-heading" }, "Create an account"),
      form,
      h("p", null, "Already have an account? ", h("a", { href: loginHref }, "Log in"), "."),
    ),
  );
  username.focus();
}
