// @ts-check
/**
 * The operator's view. A host joins their room's conference in Chromium
 * (fake red camera, 440 Hz microphone) and goes on air; an HLS player
 * watches. A user who is not an operator opens /operator and is refused
 * (the API says 403); after `confcast operator grant` on the server's data
 * folder, the operator's page shows the room with its participant and the
 * broadcast with its viewer, and follows changes without a reload. Finally
 * the server is stopped with SIGTERM: the host's page says the server is
 * stopping, and the process drains and exits.
 */

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { after, before, test } from "node:test";

import { DESKTOP, PHONE, collectErrors, launchBrowser, pageWidth, screenshotDir } from "./browser.mjs";
import { launchWithFakeDevices, makeFakeMedia } from "./conference-media.mjs";
import { ROOT, startServer } from "./server.mjs";

process.env.CONFCAST_MEDIA_PORT = "0";

const HOST = { username: "hana", password: "hana-secret-1", display_name: "Hana Host" };
const OPERATOR = { username: "olga", password: "olga-secret-1", display_name: "Olga Operator" };
const TITLE = "Operator test pattern";

/** @type {import("./server.mjs").RunningServer} */
let server;
/** @type {Awaited<ReturnType<typeof makeFakeMedia>>} */
let media;
/** @type {string} */
let shots;
/** @type {import("playwright-core").Browser} */
let hostBrowser;
/** @type {import("playwright-core").Browser} */
let browser;

before(async () => {
  [server, media, shots] = await Promise.all([startServer(), makeFakeMedia(["red"], [440]), screenshotDir()]);
  [hostBrowser, browser] = await Promise.all([
    launchWithFakeDevices({ video: media.video("red"), audio: media.audio(440) }),
    launchBrowser(),
  ]);
});

after(async () => {
  await Promise.all([hostBrowser?.close(), browser?.close()]);
  await server?.stop();
  await media?.remove();
});

/**
 * Runs `confcast operator ...` on the test server's data folder.
 * @param {string[]} args
 */
async function operatorCommand(args) {
  const bin = path.resolve(ROOT, process.env.CONFCAST_BIN || path.join("target", "debug", "confcast"));
  const { stdout } = await promisify(execFile)(bin, ["operator", ...args, "--data", server.dataDir]);
  return stdout.trim();
}

test("an operator sees rooms, participants and broadcasts; others are refused", { timeout: 180_000 }, async () => {
  const hostContext = await hostBrowser.newContext({ baseURL: server.baseUrl, viewport: DESKTOP });
  hostContext.setDefaultTimeout(15_000);
  const hostPage = await hostContext.newPage();
  const hostErrors = collectErrors(hostPage, "host");
  const operatorContext = await browser.newContext({ baseURL: server.baseUrl, viewport: DESKTOP });
  operatorContext.setDefaultTimeout(15_000);
  const operatorPage = await operatorContext.newPage();
  const operatorErrors = collectErrors(operatorPage, "operator");

  // Anonymous: the page sends to the login, the API says 401.
  await operatorPage.goto("/operator");
  await operatorPage.waitForURL(/\/login\?next=%2Foperator/);
  assert.equal((await fetch(`${server.baseUrl}/api/v1/operator/overview`)).status, 401);

  // The host meets in their room with camera and microphone, and goes on air.
  const registered = await hostContext.request.post("/api/v1/auth/register", { data: HOST });
  assert.equal(registered.status(), 201, await registered.text());
  const { token, room } = await registered.json();
  await hostPage.goto(`/rooms/${encodeURIComponent(room.id)}`);
  await hostPage.getByRole("button", { name: "Join conference", exact: true }).click();
  await hostPage.waitForFunction(() => document.documentElement.dataset.conferenceState === "connected", null, { timeout: 30_000 });
  const onAir = await fetch(`${server.baseUrl}/api/v1/rooms/${encodeURIComponent(room.id)}/broadcast`, {
    method: "PUT",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ on: true, title: TITLE }),
  });
  assert.equal(onAir.status, 200, await onAir.text());

  // The host is no operator: refused by the server, and the page says so.
  const refusedPage = await hostContext.newPage();
  await refusedPage.goto("/operator");
  await refusedPage.getByText("Only the site's operators can see this page.").waitFor();
  assert.equal(await refusedPage.locator("section.operator").getAttribute("data-state"), "refused");
  assert.equal(await refusedPage.getByRole("table").count(), 0);
  assert.equal(await refusedPage.locator("#account").getByRole("link", { name: "Operator" }).count(), 0);
  const refused = await hostContext.request.get("/api/v1/operator/overview");
  assert.equal(refused.status(), 403);
  assert.equal((await refused.json()).error.code, "not_operator");
  await refusedPage.close();

  // Olga registers, and the server's administrator makes her operator.
  const olga = await operatorContext.request.post("/api/v1/auth/register", { data: OPERATOR });
  assert.equal(olga.status(), 201, await olga.text());
  assert.equal(await operatorCommand(["grant", OPERATOR.username]), "olga is now an operator");
  assert.match(await operatorCommand(["list"]), /^olga\tOlga Operator$/);

  // An HLS player watches the broadcast (its media playlist counts it).
  const index = await (await fetch(`${server.baseUrl}/hls/${room.id}/index.m3u8`)).text();
  const mediaPlaylist = index.split("\n").find((line) => line.includes("session="));
  assert.ok(mediaPlaylist, index);
  assert.equal((await fetch(`${server.baseUrl}/hls/${room.id}/${mediaPlaylist}`)).status, 200);

  await operatorPage.goto("/operator");
  // Operators find the page from the account bar.
  await operatorPage.locator("#account").getByRole("link", { name: "Operator" }).waitFor();
  const rooms = operatorPage.locator("[data-table=rooms]");
  const roomRow = rooms.getByRole("row").filter({ hasText: room.title });
  await roomRow.waitFor();
  assert.deepEqual(await roomRow.getByRole("cell").allInnerTexts(), [room.title, "1", HOST.username, "yes"]);
  const broadcastRow = operatorPage.locator("[data-table=broadcasts]").getByRole("row").filter({ hasText: TITLE });
  await broadcastRow.waitFor();
  const cells = await broadcastRow.getByRole("cell").allInnerTexts();
  assert.equal(cells[1], HOST.display_name);
  assert.deepEqual(cells.slice(3), ["1", "0"], `HLS and WebRTC viewers: ${cells}`);
  await operatorPage.getByText("Version").waitFor();
  assert.match(await operatorPage.locator(".operator-summary").innerText(), /Participants\s+1/);
  await operatorPage.screenshot({ path: path.join(shots, "operator-desktop.png"), fullPage: true });

  // Off air: the page follows within its refresh, without a reload.
  const offAir = await fetch(`${server.baseUrl}/api/v1/rooms/${encodeURIComponent(room.id)}/broadcast`, {
    method: "PUT",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ on: false }),
  });
  assert.equal(offAir.status, 200);
  await operatorPage.getByText("Nothing is on air.").waitFor({ timeout: 15_000 });
  assert.deepEqual(await roomRow.getByRole("cell").allInnerTexts(), [room.title, "1", HOST.username, "no"]);

  // On a phone it fits.
  await operatorPage.setViewportSize(PHONE);
  const width = await pageWidth(operatorPage);
  assert.ok(width.scrollWidth <= PHONE.width, `the operator page scrolls sideways at 375 px: ${JSON.stringify(width)}`);
  await operatorPage.screenshot({ path: path.join(shots, "operator-phone.png"), fullPage: true });

  // The server stops (SIGTERM): the host's page is told, the process drains and exits.
  const stopping = server.stop();
  await hostPage.getByText(/The server is restarting or shutting down/).waitFor({ timeout: 10_000 });
  await hostPage.screenshot({ path: path.join(shots, "operator-server-stopping.png") });
  await stopping;
  assert.match(server.logs(), /drained/);

  assert.deepEqual(operatorErrors.filter((e) => !/Failed to load resource|ERR_CONNECTION_REFUSED|Could not refresh/.test(e)), []);
  void hostErrors;
});
