// @ts-check
/**
 * Steps the WHIP ingest tests share, whatever the encoder: the host makes an
 * ingest key and joins their room; then they find the encoder in the roster,
 * watch it (a red picture) and hear its 440 Hz tone without their own 660 Hz.
 */

import assert from "node:assert/strict";

import { colourName, mainVideoColour, pollUntil, toneLevels } from "./conference-media.mjs";

/**
 * Registers `host`, makes an ingest key called `name` for their personal
 * room and joins its conference in `page`.
 * @param {import("playwright-core").BrowserContext} context
 * @param {import("playwright-core").Page} page
 * @param {{ username: string, password: string, display_name: string }} host
 * @param {string} name
 * @returns {Promise<{ whip_url: string, token: string }>} the key
 */
export async function hostWithIngestKey(context, page, host, name) {
  const registered = await context.request.post("/api/v1/auth/register", { data: host });
  assert.equal(registered.status(), 201, await registered.text());
  const { token, room } = await registered.json();
  const created = await context.request.post(`/api/v1/rooms/${room.id}/ingest-keys`, {
    data: { name },
    headers: { Authorization: `Bearer ${token}` },
  });
  assert.equal(created.status(), 201, await created.text());
  const key = await created.json();

  await page.goto(`/rooms/${encodeURIComponent(room.id)}`);
  await page.getByRole("button", { name: "Join conference", exact: true }).click();
  await page.waitForFunction(() => document.documentElement.dataset.conferenceState === "connected", null, { timeout: 30_000 });
  return key;
}

/**
 * Waits for the encoder called `name` in the roster, watches it, and checks
 * the host sees its red picture and hears its tone (and not their own, as in
 * the conference test). Returns its roster row.
 * @param {import("node:test").TestContext} t
 * @param {import("playwright-core").Page} page
 * @param {string} name
 * @param {() => string} output the encoder's output so far, for failures
 */
export async function watchAndHearEncoder(t, page, name, output) {
  const row = page.locator(".participant").filter({ hasText: name });
  await row.waitFor({ timeout: 30_000 }).catch((err) => {
    throw new Error(`the encoder never appeared in the roster (${err}); encoder output:\n${output()}`);
  });
  await row.getByRole("button", { name: "Watch", exact: true }).click();
  const colour = await pollUntil(() => mainVideoColour(page), (c) => colourName(c) === "red", {
    timeout: 30_000,
    what: "the encoder's red picture",
  }).catch((err) => {
    throw new Error(`${err.message}; encoder output:\n${output()}`);
  });
  t.diagnostic(`watching the encoder: ${JSON.stringify(colour)}`);
  const tones = await pollUntil(() => toneLevels(page, [440, 660], 2000), (l) => l[440] >= 30 && l[660] < 20, {
    timeout: 30_000,
    interval: 0,
    what: "the encoder's 440 Hz tone, without the host's own 660 Hz, in the mix",
  });
  t.diagnostic(`the host hears (dB above the floor): ${JSON.stringify(tones)}`);
  return row;
}
