// @ts-check
/**
 * The installable client: the page names a web app manifest whose icons
 * load, a service worker takes control, and when the network is gone a page
 * load shows the offline page instead of the browser's error.
 */

import assert from "node:assert/strict";
import path from "node:path";
import { after, before, test } from "node:test";

import { PHONE, launchBrowser, screenshotDir } from "./browser.mjs";
import { startServer } from "./server.mjs";

/** @type {import("./server.mjs").RunningServer} */
let server;
/** @type {import("playwright-core").Browser} */
let browser;
/** @type {string} */
let shots;

before(async () => {
  [server, browser, shots] = await Promise.all([startServer(), launchBrowser(), screenshotDir()]);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test("manifest, icons, service worker, and the offline page", { timeout: 60_000 }, async () => {
  const context = await browser.newContext({ baseURL: server.baseUrl, viewport: PHONE });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  try {
    await page.goto("/live");
    const href = await page.locator('link[rel="manifest"]').getAttribute("href");
    assert.equal(href, "/static/manifest.webmanifest");
    const manifest = await (await context.request.get(href)).json();
    assert.equal(manifest.display, "standalone");
    assert.equal(manifest.start_url, "/");
    const sizes = manifest.icons.map((/** @type {{sizes: string}} */ icon) => icon.sizes);
    assert.ok(sizes.includes("192x192") && sizes.includes("512x512"), JSON.stringify(sizes));
    for (const icon of manifest.icons) {
      const reply = await context.request.get(icon.src);
      assert.equal(reply.status(), 200, icon.src);
      assert.equal(reply.headers()["content-type"], icon.type, icon.src);
    }

    const scriptUrl = await page.evaluate(async () => (await navigator.serviceWorker.ready).active?.scriptURL ?? "");
    assert.ok(scriptUrl.endsWith("/sw.js"), scriptUrl);
    // Once it controls the page, loads go through it.
    await page.reload();
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null);

    await context.setOffline(true);
    await page.goto("/rooms/whatever");
    await page.getByRole("heading", { name: "The server cannot be reached" }).waitFor();
    await page.screenshot({ path: path.join(shots, "offline-phone.png"), fullPage: true });

    // Back online, the same address loads the application again.
    await context.setOffline(false);
    await page.goto("/live");
    await page.getByRole("link", { name: "Live now" }).waitFor();
    assert.equal(await page.getByRole("heading", { name: "The server cannot be reached" }).count(), 0);
  } finally {
    await context.close();
  }
});
