// @ts-check
/**
 * Searching people is paginated: with more matches than fit on a page the
 * list ends with a "More" button that fetches the rest. Also checks that
 * the searcher is left out of their own results and that a search with no
 * match says so.
 */

import assert from "node:assert/strict";
import path from "node:path";
import { after, before, test } from "node:test";

import { DESKTOP, collectErrors, launchBrowser, registerInUi, screenshotDir } from "./browser.mjs";
import { startServer } from "./server.mjs";

/** @type {import("./server.mjs").RunningServer} */
let server;
/** @type {import("playwright-core").Browser} */
let browser;
/** @type {string} */
let shots;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  shots = await screenshotDir();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** More people than one page of results (the client asks for 20). */
const PEOPLE = 23;

test("search results page on with More", { timeout: 120_000 }, async (t) => {
  t.diagnostic(`screenshots in ${shots}`);
  for (let i = 1; i <= PEOPLE; i += 1) {
    const username = `pat${String(i).padStart(2, "0")}`;
    const response = await fetch(`${server.baseUrl}/api/v1/auth/register`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username, password: `${username}-secret`, display_name: `Pat number ${i}` }),
    });
    assert.equal(response.status, 201, `registering ${username}: ${await response.text()}`);
  }

  const context = await browser.newContext({ baseURL: server.baseUrl, viewport: DESKTOP });
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  const errors = collectErrors(page, "searcher");
  try {
    // The searcher matches the prefix too, and must not be listed.
    await registerInUi(page, { username: "patricia", displayName: "Patricia", password: "patricia-secret" });
    await page.getByRole("heading", { name: "Home", level: 1 }).waitFor();

    const results = page.getByRole("list", { name: "People found" }).getByRole("listitem");
    const more = page.getByRole("button", { name: "More", exact: true });
    await page.getByLabel("Search people").fill("pat");
    await page.getByRole("button", { name: "Search", exact: true }).click();
    await more.waitFor();
    const firstPage = await results.count();
    assert.ok(firstPage >= 19 && firstPage <= 20, `one page of results, got ${firstPage}`);
    await page.screenshot({ path: path.join(shots, "search-first-page-desktop.png"), fullPage: true });

    await more.click();
    await more.waitFor({ state: "hidden" });
    assert.equal(await results.count(), PEOPLE, "all matches after More, without the searcher");
    assert.equal(await results.filter({ hasText: "@patricia" }).count(), 0, "the searcher is not listed");
    assert.equal(await results.getByRole("button", { name: "Invite" }).count(), PEOPLE);

    await page.getByLabel("Search people").fill("nobody-here");
    await page.getByRole("button", { name: "Search", exact: true }).click();
    await page.getByRole("status").filter({ hasText: "No one else" }).waitFor();
    assert.equal(await results.count(), 0);

    assert.deepEqual(errors, [], "no script errors in the page");
  } catch (err) {
    await page.screenshot({ path: path.join(shots, "failure-search.png"), fullPage: true }).catch(() => {});
    t.diagnostic(`server output:\n${server.logs().slice(-4000)}`);
    throw err;
  } finally {
    await context.close();
  }
});
