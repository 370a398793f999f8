// @ts-check
/**
 * Entry point: finds out who is logged in, draws the account bar, and
 * starts the router with the table of pages.
 */

import * as api from "./api.js";
import { connectEvents, disconnectEvents } from "./events.js";
import { enableRingTone } from "./ring.js";
import { Router, isLocalPath } from "./router.js";
import { loadSession, onSessionChange, session, setSession } from "./session.js";
import { errorText, h, replace, userName } from "./ui.js";

/** @type {import("./router.js").Route[]} */
const routes = [
  { pattern: "/", access: "user", load: () => import("./pages/home.js") },
  { pattern: "/login", access: "guest", load: () => import("./pages/login.js") },
  { pattern: "/register", access: "guest", load: () => import("./pages/register.js") },
  { pattern: "/rooms/:id", access: "user", load: () => import("./pages/room.js") },
  { pattern: "/join/:token", access: "any", load: () => import("./pages/join.js") },
  // The conference view (camera and microphone) is part of the room page
  // (web/conference/), so it needs no route of its own.
  // The public viewer pages need no account: the directory of rooms on
  // air, and one room's channel player.
  { pattern: "/live", access: "any", load: () => import("./pages/live.js") },
  { pattern: "/watch/:room", access: "any", load: () => import("./pages/watch.js") },
  // A past broadcast, with seeking (public, like the broadcast was).
  { pattern: "/replay/:id", access: "any", load: () => import("./pages/replay.js") },
  // The site operator's overview (the server refuses everyone else).
  { pattern: "/operator", access: "user", load: () => import("./pages/operator.js") },
];

// Installable, with an offline page (web/sw.js). Browsers without service
// workers, or pages not served over HTTPS or from localhost, simply skip it.
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js").catch((err) => console.warn("service worker not registered", err));
}

const main = /** @type {HTMLElement} */ (document.getElementById("main"));
const account = /** @type {HTMLElement} */ (document.getElementById("account"));

const router = new Router({
  routes,
  outlet: main,
  guard(route, path) {
    const loggedIn = session() !== null;
    if (route.access === "user" && !loggedIn) {
      return path === "/" ? "/login" : `/login?next=${encodeURIComponent(path)}`;
    }
    if (route.access === "guest" && loggedIn) {
      const next = new URLSearchParams(location.search).get("next");
      return isLocalPath(next) ? next : "/";
    }
    return null;
  },
  notFound({ main }) {
    document.title = "Not found — confcast";
    main.append(
      h("h1", null, "Page not found"),
      h("p", null, "There is nothing at this address."),
      h("p", null, h("a", { href: "/" }, "Go to the start page")),
    );
  },
});

async function logOut() {
  try {
    await api.logout();
  } catch (err) {
    // Logging out of a session the server no longer knows is still logged out.
    if (!(err instanceof api.ApiError && err.status === 401)) {
      alert(`Could not log out: ${errorText(err)}`);
      return;
    }
  }
  disconnectEvents();
  setSession(null);
  router.navigate("/login");
}

/** @param {import("./api.js").Me | null} me */
function drawAccount(me) {
  if (me) {
    replace(
      account,
      me.operator ? h("a", { href: "/operator" }, "Operator") : null,
      h("span", { class: "signed-in" }, h("span", { class: "signed-in-label" }, "Signed in as "), userName(me.user)),
      h("button", { type: "button", class: "secondary", onclick: () => void logOut() }, "Log out"),
    );
  } else {
    replace(account, h("a", { href: "/login" }, "Log in"), h("a", { href: "/register" }, "Register"));
  }
}

api.onUnauthenticated(() => {
  if (session() === null) return;
  disconnectEvents();
  setSession(null);
  const here = location.pathname + location.search;
  router.navigate(`/login?next=${encodeURIComponent(here)}`, { replace: true });
});

onSessionChange((me) => {
  drawAccount(me);
  if (me) connectEvents();
});

async function boot() {
  enableRingTone();
  try {
    await loadSession();
  } catch (err) {
    drawAccount(null);
    replace(
      main,
      h("h1", null, "confcast is not reachable"),
      h("p", { role: "alert" }, errorText(err)),
      h("p", null, h("button", { type: "button", onclick: () => location.reload() }, "Try again")),
    );
    main.removeAttribute("aria-busy");
    return;
  }
  router.start();
}

void boot();
