// @ts-check
/** The log-in page. After logging in, goes on to `?next=` (a local path) or home. */

import * as api from "../api.js";
import { isLocalPath } from "../router.js";
import { loadSession } from "../session.js";
import { busy, errorText, field, h, messageArea, say } from "../ui.js";

/** @type {import("../router.js").Render} */
export function render({ main, query, navigate }) {
  document.title = "Log in — confcast";
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
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const submit = h("button", { type: "submit" }, "Log in");
  const message = messageArea("alert");

  const form = h(
    "form",
    { class: "card stack", "aria-labelledby": "login-heading" },
    field("Username", username),
    field("Password", password),
    message,
    h("div", { class: "actions" }, submit),
  );

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    say(message, "");
    void busy(submit, async () => {
      try {
        await api.login({ username: username.value.trim(), password: password.value });
        await loadSession();
        navigate(target, { replace: true });
      } catch (err) {
        say(message, errorText(err), "error");
        password.select();
      }
    });
  });

  const registerHref = target === "/" ? "/register" : `/register?next=${encodeURIComponent(target)}`;
  main.append(
    h(
      "div",
      { class: "narrow" },
      h("h1", { id: "login-heading" }, "Log in"),
      form,
      h("p", null, "New to confcast? ", h("a", { href: registerHref }, "Create an account"), "."),
    ),
  );
  username.focus();
}
