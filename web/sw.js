// @ts-check
/**
 * The service worker that makes the client installable and says so when the
 * server cannot be reached. It does not cache the application: every page,
 * script and API call goes to the server as usual (so a new server version
 * is picked up at once). Only a page load that fails for want of a network
 * is answered, with the offline page kept at install.
 */

/// <reference lib="webworker" />

const CACHE = "confcast-offline-v1";
const OFFLINE = "/static/offline.html";
const KEEP = [OFFLINE, "/static/styles.css", "/static/icon.svg"];

const worker = /** @type {ServiceWorkerGlobalScope} */ (/** @type {unknown} */ (self));

worker.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(KEEP))
      .then(() => worker.skipWaiting()),
  );
});

worker.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((name) => name !== CACHE).map((name) => caches.delete(name))))
      .then(() => worker.clients.claim()),
  );
});

worker.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.mode === "navigate") {
    event.respondWith(fetch(request).catch(async () => (await caches.match(OFFLINE)) ?? Response.error()));
    return;
  }
  // The offline page's own style sheet and icon, when the network is gone.
  const url = new URL(request.url);
  if (request.method === "GET" && url.origin === worker.location.origin && KEEP.includes(url.pathname)) {
    event.respondWith(fetch(request).catch(async () => (await caches.match(request)) ?? Response.error()));
  }
});
