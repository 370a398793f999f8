// @ts-check
/**
 * Small functions for building the DOM. Everything is made of elements and text nodes;
 * nothing here parses HTML, so names people type (which may well contain
 * `<script>` or `<img onerror>`) always show verbatim.
 */

import { ApiError } from "./api.js";

/** @typedef {Node | string | number | null | undefined | false} Child */
/** @typedef {Child | Child[]} Children */

/**
 * Attributes for {@link h}. `class`, `for` and any other attribute are set
 * with setAttribute; `true` sets an empty boolean attribute, `false`, null
 * and undefined leave it out; `on<event>` keys take listeners.
 * @typedef {Record<string, string | number | boolean | null | undefined | EventListener>} Attrs
 */

/**
 * Creates an element.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Attrs | null} [attrs]
 * @param {...Children} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (typeof value === "function") {
      if (!key.startsWith("on")) throw new TypeError(`listener given for attribute ${key}`);
      el.addEventListener(key.slice(2), value);
    } else if (key.startsWith("on")) {
      throw new TypeError(`inline handler attribute ${key} is not allowed`);
    } else if (value === true) {
      el.setAttribute(key, "");
    } else if (value !== false && value !== null && value !== undefined) {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

/**
 * Appends children (text or nodes, arrays flattened, empty values skipped).
 * @param {Node} parent
 * @param {Children[]} children
 */
export function append(parent, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
  }
}

/**
 * Replaces all children of `parent`.
 * @param {Element} parent
 * @param {...Children} children
 */
export function replace(parent, ...children) {
  parent.replaceChildren();
  append(parent, children);
}

let counter = 0;

/**
 * A document-unique id for tying labels and descriptions to controls.
 * @param {string} prefix
 */
export function uid(prefix) {
  counter += 1;
  return `${prefix}-${counter}`;
}

/**
 * A labelled form field: `<label for>` + the control, and an optional hint
 * that is announced with the control.
 * @param {string} label visible label text
 * @param {HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement} control
 * @param {string} [hint]
 * @returns {HTMLDivElement}
 */
export function field(label, control, hint) {
  if (!control.id) control.id = uid("field");
  const wrapper = h("div", { class: "field" }, h("label", { for: control.id }, label), control);
  if (hint) {
    const hintEl = h("p", { class: "hint", id: uid("hint") }, hint);
    control.setAttribute("aria-describedby", hintEl.id);
    wrapper.append(hintEl);
  }
  return wrapper;
}

/**
 * A live region for the outcome of an action. Use {@link say} to fill it.
 * @param {"status" | "alert"} [role]
 * @returns {HTMLParagraphElement}
 */
export function messageArea(role = "status") {
  return h("p", { class: "message", role, "aria-live": role === "alert" ? "assertive" : "polite", hidden: true });
}

/**
 * Shows a message in an area made by {@link messageArea}; an empty text hides it.
 * @param {HTMLElement} area
 * @param {string} text
 * @param {"info" | "success" | "error"} [kind]
 */
export function say(area, text, kind = "info") {
  area.textContent = text;
  area.hidden = text === "";
  area.dataset.kind = kind;
}

/**
 * A readable sentence for an error thrown by the API layer.
 * @param {unknown} err
 * @returns {string}
 */
export function errorText(err) {
  if (err instanceof ApiError) {
    if (err.code === "rate_limited" && err.retryAfter !== null) {
      return `${err.message} (try again in ${err.retryAfter} s)`;
    }
    return err.message;
  }
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * Runs `action` with `button` disabled and marked busy, so it cannot be
 * pressed twice while the request is on its way.
 * @template T
 * @param {HTMLButtonElement} button
 * @param {() => Promise<T>} action
 * @returns {Promise<T>}
 */
export async function busy(button, action) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await action();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

/**
 * "Display Name @username", the username de-emphasised.
 * @param {{username: string, display_name: string}} user
 * @returns {HTMLSpanElement}
 */
export function userName(user) {
  return h(
    "span",
    { class: "user" },
    h("span", { class: "display-name" }, user.display_name),
    " ",
    h("span", { class: "username" }, `@${user.username}`),
  );
}

/** @type {Record<string, string>} */
const ROLE_NAMES = { host: "Host", admin: "Admin", member: "Member" };

/**
 * A small badge naming a room role.
 * @param {string} role
 * @returns {HTMLSpanElement}
 */
export function roleBadge(role) {
  return h("span", { class: `badge role-${role}` }, ROLE_NAMES[role] ?? role);
}

/**
 * A date and time in the reader's locale; the raw text if it cannot be read.
 * @param {string} iso RFC 3339
 * @returns {HTMLTimeElement}
 */
export function dateTime(iso) {
  const date = new Date(iso);
  const text = Number.isNaN(date.getTime())
    ? iso
    : date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  return h("time", { datetime: iso }, text);
}

const SVG = "http://www.w3.org/2000/svg";

/**
 * A bell icon (decorative, hidden from screen readers), drawn as SVG so it
 * does not depend on an emoji font.
 * @returns {SVGSVGElement}
 */
export function bellIcon() {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", "22");
  svg.setAttribute("height", "22");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.classList.add("bell");
  const path = document.createElementNS(SVG, "path");
  path.setAttribute(
    "d",
    "M12 2a1.5 1.5 0 0 0-1.5 1.5v.7A6 6 0 0 0 6 10v4.5L4 17v1h16v-1l-2-2.5V10a6 6 0 0 0-4.5-5.8v-.7A1.5 1.5 0 0 0 12 2zm-2 17a2 2 0 0 0 4 0z",
  );
  path.setAttribute("fill", "currentColor");
  svg.append(path);
  return svg;
}
