// @ts-check
/**
 * History-based routing. The server answers every page path with the same
 * index.html, so the client picks the page from `location.pathname`, and
 * in-app links change the URL with `history.pushState` instead of loading
 * a new document.
 */

/**
 * What a page gets when it is shown.
 * @typedef {object} PageContext
 * @property {HTMLElement} main where the page draws itself
 * @property {Record<string, string>} params decoded `:name` parts of the path
 * @property {URLSearchParams} query
 * @property {AbortSignal} signal aborted when the user leaves the page: pass it
 *   to listeners and requests so nothing of the page outlives it
 * @property {(url: string, options?: {replace?: boolean}) => void} navigate goes to
 *   another in-app path
 */

/** @typedef {(ctx: PageContext) => void | Promise<void>} Render */

/**
 * Who may see a route: `user` needs a session, `guest` is only for people
 * who are not logged in (log in, register), `any` is for everyone.
 * @typedef {"user" | "guest" | "any"} Access
 */

/**
 * @typedef {object} Route
 * @property {string} pattern e.g. `/rooms/:id`
 * @property {Access} access
 * @property {() => Promise<{render: Render}>} load imports the page module
 */

/**
 * @typedef {object} Match
 * @property {Route} route
 * @property {Record<string, string>} params
 */

/**
 * @param {string} pattern
 * @param {string} path
 * @returns {Record<string, string> | null}
 */
function matchPattern(pattern, path) {
  const want = pattern.split("/").filter(Boolean);
  const got = path.split("/").filter(Boolean);
  if (want.length !== got.length) return null;
  /** @type {Record<string, string>} */
  const params = {};
  for (let i = 0; i < want.length; i += 1) {
    const part = want[i];
    if (part.startsWith(":")) {
      try {
        params[part.slice(1)] = decodeURIComponent(got[i]);
      } catch {
        return null;
      }
    } else if (part !== got[i]) {
      return null;
    }
  }
  return params;
}

/**
 * Whether `target` is a path inside this app that is safe to go to after
 * logging in (same origin, not `//host`).
 * @param {string | null} target
 * @returns {target is string}
 */
export function isLocalPath(target) {
  return typeof target === "string" && target.startsWith("/") && !target.startsWith("//") && !target.startsWith("/\\");
}

export class Router {
  /**
   * @param {object} options
   * @param {Route[]} options.routes
   * @param {HTMLElement} options.outlet the element pages draw into
   * @param {(route: Route, path: string) => string | null} options.guard returns a
   *   path to go to instead, or null to show the route
   * @param {Render} options.notFound
   */
  constructor({ routes, outlet, guard, notFound }) {
    this.routes = routes;
    this.outlet = outlet;
    this.guard = guard;
    this.notFound = notFound;
    /** @type {AbortController | null} */
    this.current = null;
    this.firstRender = true;
  }

  /**
   * @param {string} path
   * @returns {Match | null}
   */
  match(path) {
    for (const route of this.routes) {
      const params = matchPattern(route.pattern, path);
      if (params) return { route, params };
    }
    return null;
  }

  /** Shows the page for the current URL and starts following links and history. */
  start() {
    window.addEventListener("popstate", () => void this.render());
    document.addEventListener("click", (event) => this.onClick(event));
    void this.render();
  }

  /**
   * Goes to an in-app path.
   * @param {string} url path with optional query, e.g. `/login?next=%2F`
   * @param {{replace?: boolean}} [options]
   */
  navigate(url, options = {}) {
    if (options.replace) history.replaceState(null, "", url);
    else history.pushState(null, "", url);
    void this.render();
  }

  /** Draws the current URL's page again (e.g. after logging in or out). */
  refresh() {
    void this.render();
  }

  /** @param {MouseEvent} event */
  onClick(event) {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const target = event.target instanceof Element ? event.target.closest("a[href]") : null;
    if (!(target instanceof HTMLAnchorElement)) return;
    if (target.target && target.target !== "_self") return;
    if (target.hasAttribute("download")) return;
    const url = new URL(target.href);
    if (url.origin !== location.origin || !this.match(url.pathname)) return;
    // A jump within the page (such as the skip link) is the browser's job.
    if (url.hash && url.pathname === location.pathname && url.search === location.search) return;
    event.preventDefault();
    if (url.pathname + url.search !== location.pathname + location.search) {
      this.navigate(url.pathname + url.search + url.hash);
    }
  }

  async render() {
    this.current?.abort();
    const controller = new AbortController();
    this.current = controller;
    const path = location.pathname;
    const found = this.match(path);
    if (found) {
      const redirect = this.guard(found.route, path + location.search);
      if (redirect !== null) {
        history.replaceState(null, "", redirect);
        void this.render();
        return;
      }
    }
    /** @type {Render} */
    let render = this.notFound;
    if (found) {
      try {
        render = (await found.route.load()).render;
      } catch (err) {
        console.error("could not load page", err);
        render = this.notFound;
      }
      if (controller.signal.aborted) return;
    }
    const main = this.outlet;
    main.replaceChildren();
    main.removeAttribute("aria-busy");
    const first = this.firstRender;
    this.firstRender = false;
    if (!first) window.scrollTo(0, 0);
    try {
      await render({
        main,
        params: found ? found.params : {},
        query: new URLSearchParams(location.search),
        signal: controller.signal,
        navigate: (url, options) => this.navigate(url, options),
      });
    } catch (err) {
      if (controller.signal.aborted) return;
      console.error("page failed", err);
    }
    // After an in-app navigation, move focus to the new page so screen
    // readers announce it; on first load leave focus where the browser put it.
    if (!first && !controller.signal.aborted && !main.contains(document.activeElement)) {
      main.focus({ preventScroll: true });
    }
  }
}
