// @ts-check
/**
 * The public viewer pages, with real media. A host (registered through the
 * API) joins their room's conference in a Chromium whose camera shows red
 * and whose microphone plays 440 Hz, and goes on air over the REST API.
 * Viewers, in another Chromium and without an account, open "Live now",
 * see the room appear without reloading, open it and watch: the picture
 * moves on, is red, and the sound carries the 440 Hz tone (LL-HLS through
 * hls.js). When the broadcast stops the watch page says "Off air". Both
 * pages are also checked, and photographed, at 375 px and on a desktop,
 * and with nobody on air. With three people in the conference (red, green
 * and blue cameras), the host's video lock decides what goes on air: the
 * viewer's picture follows the host's received video from one person to the
 * other while the player keeps playing.
 */

import assert from "node:assert/strict";
import path from "node:path";
import { after, before, test } from "node:test";

import { DESKTOP, PHONE, collectErrors, launchViewerBrowser, pageWidth, screenshotDir } from "./browser.mjs";
import { colourName, launchWithFakeDevices, mainVideoColour, makeFakeMedia, pollUntil } from "./conference-media.mjs";
import { startServer } from "./server.mjs";
import { stageState, toneInVideo, watchVideoColour } from "./watch-page.mjs";

// Every server of the test run gets its own free UDP port for media.
process.env.CONFCAST_MEDIA_PORT = "0";

const HOST = { username: "hana", password: "hana-secret-1", display_name: "Hana Host" };
const TITLE = "Red test pattern";
const TONE = 440;
/** The other two people of the switching test: camera colour and tone. */
const GUESTS = [
  { username: "gina", password: "gina-secret-1", display_name: "Gina Green", colour: "green", tone: 660 },
  { username: "bruno", password: "bruno-secret-1", display_name: "Bruno Blue", colour: "blue", tone: 880 },
];

/** @type {import("./server.mjs").RunningServer} */
let server;
/** @type {Awaited<ReturnType<typeof makeFakeMedia>>} */
let media;
/** @type {string} */
let shots;
/** @type {import("playwright-core").Browser} the host's, with a red camera and a 440 Hz microphone */
let hostBrowser;
/** @type {import("playwright-core").Browser} the viewers', sound allowed to play without a click */
let viewerBrowser;

before(async () => {
  [server, media, shots] = await Promise.all([startServer(), makeFakeMedia(["red", ...GUESTS.map((g) => g.colour)], [TONE, ...GUESTS.map((g) => g.tone)]), screenshotDir()]);
  [hostBrowser, viewerBrowser] = await Promise.all([
    launchWithFakeDevices({ video: media.video("red"), audio: media.audio(TONE) }),
    launchViewerBrowser(),
  ]);
});

after(async () => {
  await Promise.all([hostBrowser?.close(), viewerBrowser?.close()]);
  await server?.stop();
  await media?.remove();
});

/**
 * A viewer's page (no account), with its script errors collected and the
 * player's hls.js reports kept apart.
 * @param {{width: number, height: number}} viewport
 * @param {string} name
 * @param {{soundNeedsClick?: boolean}} [options] make the page's media refuse to
 *   play with sound before the first click, as browsers' autoplay policies
 *   do (headless Chromium lets everything play)
 */
async function viewerPage(viewport, name, { soundNeedsClick = false } = {}) {
  const context = await viewerBrowser.newContext({ baseURL: server.baseUrl, viewport });
  if (soundNeedsClick) {
    // (Not navigator.userActivation: page.evaluate counts as a user gesture.)
    await context.addInitScript(() => {
      let clicked = false;
      const onInput = (/** @type {Event} */ event) => {
        if (event.isTrusted) clicked = true;
      };
      window.addEventListener("pointerdown", onInput, { capture: true });
      window.addEventListener("keydown", onInput, { capture: true });
      const play = HTMLMediaElement.prototype.play;
      HTMLMediaElement.prototype.play = function () {
        if (!this.muted && !clicked) {
          return Promise.reject(new DOMException("play() with sound needs a click first", "NotAllowedError"));
        }
        return play.call(this);
      };
    });
  }
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  const errors = collectErrors(page, name);
  /** @type {string[]} */
  const hlsReports = [];
  page.on("console", (message) => {
    if (message.text().startsWith("hls.js")) hlsReports.push(`${name}: ${message.text()}`);
  });
  return { context, page, errors, hlsReports };
}

/**
 * Turns the room's broadcast on or off with the host's bearer token.
 * @param {string} token
 * @param {string} roomId
 * @param {boolean} on
 */
async function setBroadcast(token, roomId, on) {
  return putJson(token, `/api/v1/rooms/${encodeURIComponent(roomId)}/broadcast`,
    on ? { on: true, title: TITLE, description: "A red picture and a 440 Hz tone." } : { on: false });
}

/**
 * A PUT with a JSON body and a bearer token that must answer 200.
 * @param {string} token
 * @param {string} apiPath
 * @param {unknown} body
 */
async function putJson(token, apiPath, body) {
  const response = await fetch(`${server.baseUrl}${apiPath}`, {
    method: "PUT",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  assert.equal(response.status, 200, text);
  return JSON.parse(text);
}

/**
 * Checks that the page does not scroll sideways and the element fits.
 * @param {import("playwright-core").Page} page
 * @param {string} selector
 * @param {string} what
 */
async function checkFitsPhone(page, selector, what) {
  const width = await pageWidth(page);
  assert.ok(width.scrollWidth <= PHONE.width, `${what} scrolls sideways at 375 px: ${JSON.stringify(width)}`);
  const box = await page.locator(selector).first().boundingBox();
  assert.ok(box && box.x >= 0 && box.x + box.width <= PHONE.width, `${what}: ${selector} fits the phone: ${JSON.stringify(box)}`);
}

/**
 * Lists what hls.js reported (the player logs each error event as a
 * warning starting with "hls.js"), the same line once with a count.
 * @param {import("node:test").TestContext} t
 * @param {string[]} reports
 */
function reportHls(t, reports) {
  if (reports.length === 0) {
    t.diagnostic("hls.js reported nothing");
    return;
  }
  /** @type {Map<string, number>} */
  const counts = new Map();
  for (const report of reports) {
    const key = report.replace(/\{.*\}/, "{…}").replace(/\d+\.\d+/g, "…");
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  t.diagnostic(`hls.js reported ${reports.length} error events:`);
  for (const [line, count] of counts) t.diagnostic(`  ${count} × ${line}`);
}

test("nobody on air: an empty directory and an off-air watch page", { timeout: 60_000 }, async (t) => {
  t.diagnostic(`screenshots in ${shots}`);
  const phone = await viewerPage(PHONE, "phone");
  const desktop = await viewerPage(DESKTOP, "desktop");
  try {
    for (const [viewer, name] of /** @type {const} */ ([
      [phone, "phone"],
      [desktop, "desktop"],
    ])) {
      await viewer.page.goto("/live");
      await viewer.page.getByRole("heading", { name: "Live now", level: 1 }).waitFor();
      await viewer.page.getByRole("heading", { name: "Nobody is on air right now" }).waitFor();
      await viewer.page.getByRole("link", { name: "Log in" }).first().waitFor();
      await viewer.page.screenshot({ path: path.join(shots, `viewer-live-empty-${name}.png`), fullPage: true });

      await viewer.page.goto("/watch/no-such-room");
      await viewer.page.getByRole("heading", { name: "Off air" }).waitFor();
      assert.equal((await stageState(viewer.page))?.state, "offair");
      assert.equal(await viewer.page.locator("video.watch-video").isVisible(), false);
      await viewer.page.screenshot({ path: path.join(shots, `viewer-watch-offair-${name}.png`), fullPage: true });
    }
    await checkFitsPhone(phone.page, ".watch-stage", "the off-air watch page");
    await phone.page.goto("/live");
    await phone.page.getByRole("heading", { name: "Nobody is on air right now" }).waitFor();
    await checkFitsPhone(phone.page, ".live-empty", "the empty directory");
    assert.deepEqual([...phone.errors, ...desktop.errors], [], "no script errors in the pages");
  } finally {
    await Promise.all([phone.context.close(), desktop.context.close()]);
  }
});

test("on air: the directory updates live and the watch page plays the room's picture and sound", { timeout: 180_000 }, async (t) => {
  const started = Date.now();
  const hostContext = await hostBrowser.newContext({ baseURL: server.baseUrl, viewport: DESKTOP });
  hostContext.setDefaultTimeout(15_000);
  const desktop = await viewerPage(DESKTOP, "viewer");
  // This phone's browser does not let pages start sound by themselves.
  const phone = await viewerPage(PHONE, "phone viewer", { soundNeedsClick: true });
  const hostPage = await hostContext.newPage();
  const hostErrors = collectErrors(hostPage, "host");
  try {
    // The host registers through the API (the context keeps the session
    // cookie for the page; the token is for the broadcast switch) and joins
    // the conference of their own room with camera and microphone.
    const registered = await hostContext.request.post("/api/v1/auth/register", { data: HOST });
    assert.equal(registered.status(), 201, await registered.text());
    const { token, room } = await registered.json();
    await hostPage.goto(`/rooms/${encodeURIComponent(room.id)}`);
    await hostPage.getByRole("button", { name: "Join conference", exact: true }).click();
    await hostPage.waitForFunction(() => document.documentElement.dataset.conferenceState === "connected", null, { timeout: 30_000 });

    // A viewer waits on "Live now"; the room appears there without a reload.
    const viewer = desktop.page;
    await viewer.goto("/live");
    await viewer.getByRole("heading", { name: "Nobody is on air right now" }).waitFor();
    await viewer.evaluate(() => {
      /** @type {any} */ (window).__sameDocument = true;
    });
    const onAir = await setBroadcast(token, room.id, true);
    assert.equal(onAir.on, true);
    const card = viewer.getByRole("listitem").filter({ hasText: TITLE });
    await card.getByRole("link", { name: TITLE }).waitFor();
    assert.equal(await viewer.evaluate(() => /** @type {any} */ (window).__sameDocument), true, "the directory was not reloaded");
    await card.getByText(HOST.display_name).waitFor();
    await card.getByText("LIVE", { exact: true }).waitFor();
    await card.getByText(/watching/).waitFor();
    await card.getByText(/on air/).waitFor();
    await viewer.screenshot({ path: path.join(shots, "viewer-live-desktop.png"), fullPage: true });
    t.diagnostic(`on air and listed after ${Date.now() - started} ms`);

    // The viewer opens the room and it plays.
    await card.getByRole("link", { name: TITLE }).click();
    await viewer.waitForURL(`**/watch/${room.id}`);
    await viewer.getByRole("heading", { name: TITLE, level: 1 }).waitFor();
    const playing = await pollUntil(
      () => stageState(viewer),
      (s) => s !== null && s.state === "playing" && s.currentTime > 0,
      { timeout: 45_000, what: "the watch page to play" },
    );
    assert.ok(playing);
    t.diagnostic(`playing with ${playing.engine} after ${Date.now() - started} ms`);
    assert.equal(playing.engine, "hls.js");
    assert.equal(playing.muted, false, "autoplay with sound is allowed here, so the video is not muted");
    assert.equal(await viewer.getByRole("button", { name: "Unmute" }).isVisible(), false);

    // The picture moves on…
    const from = playing.currentTime;
    const moved = await pollUntil(
      () => stageState(viewer),
      (s) => s !== null && s.currentTime >= from + 3,
      { timeout: 20_000, what: "currentTime to advance by 3 s" },
    );
    assert.ok(moved);
    t.diagnostic(`currentTime ${from.toFixed(2)} → ${moved.currentTime.toFixed(2)}; ${moved.latency} s behind live`);
    // …is the host's red camera…
    const colour = await pollUntil(() => watchVideoColour(viewer), (c) => colourName(c) === "red", { what: "a red picture" });
    t.diagnostic(`picture ${JSON.stringify(colour)}`);
    // …and the sound carries the host's tone.
    const tone = await pollUntil(
      () => toneInVideo(viewer, TONE, 2000),
      (l) => l.aboveFloorDb >= 20 && Math.abs(l.peakHz - TONE) <= 15,
      { timeout: 30_000, interval: 0, what: `a ${TONE} Hz tone in the sound` },
    );
    t.diagnostic(`sound: strongest at ${tone.peakHz} Hz, ${TONE} Hz stands ${tone.aboveFloorDb} dB above the floor`);

    // The directory stream counts the player as a viewer.
    await viewer.locator(".watch-viewers").filter({ hasText: /^[1-9]\d* watching$/ }).waitFor({ timeout: 20_000 });
    await viewer.screenshot({ path: path.join(shots, "viewer-watch-desktop.png"), fullPage: true });

    // Low latency: the same broadcast over WebRTC (WHEP), from the same page.
    // In this network namespace there is only loopback, and Chromium offers
    // a loopback candidate only to a page that has had media permission (on
    // a real network a receive-only page gathers its candidates as usual):
    // so the page opens and closes a fake microphone once first.
    await viewer.evaluate(async () => {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      for (const track of stream.getTracks()) track.stop();
    });
    await viewer.getByRole("button", { name: "Low latency (WebRTC)" }).click();
    const webrtc = await pollUntil(
      () => stageState(viewer),
      (s) => s !== null && s.engine === "webrtc" && s.state === "playing" && s.currentTime > 0,
      { timeout: 30_000, what: "the WebRTC player to play" },
    );
    assert.ok(webrtc);
    assert.match(viewer.url(), /[?&]mode=webrtc\b/, "the choice is kept in the address");
    const webrtcColour = await pollUntil(() => watchVideoColour(viewer), (c) => colourName(c) === "red", { what: "a red picture over WebRTC" });
    t.diagnostic(`WebRTC picture ${JSON.stringify(webrtcColour)} after ${Date.now() - started} ms`);
    const webrtcTone = await pollUntil(
      () => toneInVideo(viewer, TONE, 2000),
      (l) => l.aboveFloorDb >= 20 && Math.abs(l.peakHz - TONE) <= 15,
      { timeout: 30_000, interval: 0, what: `a ${TONE} Hz tone over WebRTC` },
    );
    t.diagnostic(`WebRTC sound: strongest at ${webrtcTone.peakHz} Hz, ${webrtcTone.aboveFloorDb} dB above the floor`);
    await viewer.screenshot({ path: path.join(shots, "viewer-watch-webrtc-desktop.png"), fullPage: true });
    // And back to the standard stream.
    await viewer.getByRole("button", { name: "Standard stream (HLS)" }).click();
    await pollUntil(
      () => stageState(viewer),
      (s) => s !== null && s.engine === "hls.js" && s.state === "playing",
      { timeout: 45_000, what: "LL-HLS to play again" },
    );

    // A phone opens the watch page directly: it plays, muted since its
    // browser blocks sound until a click, and offers to unmute; the video fits.
    await phone.page.goto(`/watch/${encodeURIComponent(room.id)}`);
    const phonePlaying = await pollUntil(
      () => stageState(phone.page),
      (s) => s !== null && s.state === "playing" && s.currentTime > 0,
      { timeout: 45_000, what: "the phone's watch page to play" },
    );
    assert.equal(phonePlaying?.muted, true, "started muted where sound needs a click");
    const unmute = phone.page.getByRole("button", { name: "Unmute" });
    await unmute.waitFor();
    await pollUntil(() => watchVideoColour(phone.page), (c) => colourName(c) === "red", { what: "a red picture on the phone" });
    await phone.page.screenshot({ path: path.join(shots, "viewer-watch-muted-phone.png"), fullPage: true });
    await unmute.click();
    await unmute.waitFor({ state: "hidden" });
    const unmuted = await stageState(phone.page);
    assert.ok(unmuted && !unmuted.muted && !unmuted.paused, `unmuted and playing: ${JSON.stringify(unmuted)}`);
    await checkFitsPhone(phone.page, "video.watch-video", "the watch page");
    const phoneLatency = await pollUntil(() => stageState(phone.page), (s) => s !== null && s.latency !== "", { what: "the phone's latency" });
    t.diagnostic(`the phone, which joined later, is ${phoneLatency?.latency} s behind live`);
    await phone.page.screenshot({ path: path.join(shots, "viewer-watch-phone.png"), fullPage: true });
    await phone.page.goto("/live");
    await phone.page.getByRole("link", { name: TITLE }).waitFor();
    await checkFitsPhone(phone.page, ".live-card", "the directory");
    await phone.page.screenshot({ path: path.join(shots, "viewer-live-phone.png"), fullPage: true });
    await phone.page.evaluate(() => {
      /** @type {any} */ (window).__sameDocument = true;
    });

    const late = await stageState(viewer);
    t.diagnostic(`after ${Date.now() - started} ms the first viewer is ${late?.latency} s behind live`);

    // The broadcast stops: the watch page says so and its player stops; the
    // room leaves the phone's directory without a reload.
    await setBroadcast(token, room.id, false);
    await viewer.getByRole("heading", { name: "Off air" }).waitFor({ timeout: 20_000 });
    const stopped = await stageState(viewer);
    assert.ok(stopped && ["offair", "ended"].includes(stopped.state), `stopped: ${JSON.stringify(stopped)}`);
    assert.equal(await viewer.locator("video.watch-video").isVisible(), false);
    assert.equal(await viewer.locator(".watch-title-row .live-badge").textContent(), "Off air");
    await viewer.screenshot({ path: path.join(shots, "viewer-watch-ended-desktop.png"), fullPage: true });
    await phone.page.getByRole("heading", { name: "Nobody is on air right now" }).waitFor({ timeout: 20_000 });
    assert.equal(await phone.page.getByRole("link", { name: TITLE }).count(), 0);
    assert.equal(await phone.page.evaluate(() => /** @type {any} */ (window).__sameDocument), true, "the directory was not reloaded");

    reportHls(t, [...desktop.hlsReports, ...phone.hlsReports]);
    assert.deepEqual([...desktop.errors, ...phone.errors, ...hostErrors], [], "no script errors in the pages");
    t.diagnostic(`done in ${Date.now() - started} ms`);
  } catch (err) {
    await desktop.page.screenshot({ path: path.join(shots, "failure-viewer.png"), fullPage: true }).catch(() => {});
    await phone.page.screenshot({ path: path.join(shots, "failure-phone-viewer.png"), fullPage: true }).catch(() => {});
    await hostPage.screenshot({ path: path.join(shots, "failure-host.png"), fullPage: true }).catch(() => {});
    reportHls(t, [...desktop.hlsReports, ...phone.hlsReports]);
    t.diagnostic(`server output:\n${server.logs().slice(-6000)}`);
    throw err;
  } finally {
    await Promise.all([hostContext.close(), desktop.context.close(), phone.context.close()]);
  }
});

test("on air with three people: the host's lock switches the picture and the player keeps playing", { timeout: 120_000 }, async (t) => {
  const started = Date.now();
  const host = { username: "rosa", password: "rosa-secret-1", display_name: "Rosa Red" };
  const guestBrowsers = await Promise.all(GUESTS.map((g) => launchWithFakeDevices({ video: media.video(g.colour), audio: media.audio(g.tone) })));
  const contexts = await Promise.all(
    [hostBrowser, ...guestBrowsers].map((browser) => browser.newContext({ baseURL: server.baseUrl, viewport: DESKTOP })),
  );
  for (const context of contexts) context.setDefaultTimeout(15_000);
  const pages = await Promise.all(contexts.map((context) => context.newPage()));
  const [hostPage] = pages;
  const errors = pages.map((page, i) => collectErrors(page, i === 0 ? host.username : GUESTS[i - 1].username));
  const viewer = await viewerPage(DESKTOP, "viewer");
  try {
    // The host registers, the two others register and accept an invite link.
    const registered = await contexts[0].request.post("/api/v1/auth/register", { data: host });
    assert.equal(registered.status(), 201, await registered.text());
    const { token, room } = await registered.json();
    const link = await contexts[0].request.post(`/api/v1/rooms/${encodeURIComponent(room.id)}/invite-links`, { data: {} });
    assert.equal(link.status(), 201, await link.text());
    const linkToken = (await link.json()).token;
    await Promise.all(
      GUESTS.map(async (guest, i) => {
        const request = contexts[i + 1].request;
        const made = await request.post("/api/v1/auth/register", { data: { username: guest.username, password: guest.password, display_name: guest.display_name } });
        assert.equal(made.status(), 201, await made.text());
        const accepted = await request.post(`/api/v1/invite-links/${encodeURIComponent(linkToken)}/accept`);
        assert.ok(accepted.ok(), await accepted.text());
      }),
    );
    // All three join the conference.
    await Promise.all(
      pages.map(async (page) => {
        await page.goto(`/rooms/${encodeURIComponent(room.id)}`);
        await page.getByRole("button", { name: "Join conference", exact: true }).click();
        await page.waitForFunction(() => document.documentElement.dataset.conferenceState === "connected", null, { timeout: 30_000 });
      }),
    );
    const lockTo = (/** @type {string} */ username) =>
      putJson(token, `/api/v1/rooms/${encodeURIComponent(room.id)}/video-lock`, { locked: true, designated: username });
    const [first, second] = GUESTS;

    // Locked to the first guest, the host receives green; on air, the viewer sees it too.
    await lockTo(first.username);
    await pollUntil(() => mainVideoColour(hostPage), (c) => colourName(c) === first.colour, { what: `the host to receive ${first.colour}` });
    await setBroadcast(token, room.id, true);
    await viewer.page.goto(`/watch/${encodeURIComponent(room.id)}`);
    await pollUntil(
      () => stageState(viewer.page),
      (s) => s !== null && s.state === "playing" && s.currentTime > 0,
      { timeout: 45_000, what: "the watch page to play" },
    );
    await pollUntil(() => watchVideoColour(viewer.page), (c) => colourName(c) === first.colour, { what: `a ${first.colour} picture on air` });
    t.diagnostic(`on air showing ${first.colour} after ${Date.now() - started} ms`);

    // The host designates the second guest: the host and then the viewer see blue.
    const beforeSwitch = await stageState(viewer.page);
    assert.ok(beforeSwitch);
    await lockTo(second.username);
    await pollUntil(() => mainVideoColour(hostPage), (c) => colourName(c) === second.colour, { what: `the host to receive ${second.colour}` });
    const switched = Date.now();
    await pollUntil(() => watchVideoColour(viewer.page), (c) => colourName(c) === second.colour, { what: `a ${second.colour} picture on air` });
    t.diagnostic(`the viewer's picture turned ${second.colour} ${Date.now() - switched} ms after the host's`);

    // The player went on playing through the switch, and keeps playing.
    const afterSwitch = await stageState(viewer.page);
    assert.ok(afterSwitch && afterSwitch.state === "playing", `playing after the switch: ${JSON.stringify(afterSwitch)}`);
    assert.ok(afterSwitch.currentTime > beforeSwitch.currentTime, `currentTime advanced: ${beforeSwitch.currentTime} → ${afterSwitch.currentTime}`);
    const later = await pollUntil(
      () => stageState(viewer.page),
      (s) => s !== null && s.currentTime >= afterSwitch.currentTime + 2,
      { timeout: 20_000, what: "currentTime to advance by 2 s after the switch" },
    );
    assert.equal(later?.state, "playing");
    assert.equal(colourName(await watchVideoColour(viewer.page)), second.colour);
    reportHls(t, viewer.hlsReports);
    assert.deepEqual(viewer.hlsReports.filter((r) => r.includes("hls.js: fatal")), [], "hls.js reported no fatal error");
    assert.deepEqual([...viewer.errors, ...errors.flat()], [], "no script errors in the pages");
    await setBroadcast(token, room.id, false);
    t.diagnostic(`done in ${Date.now() - started} ms`);
  } catch (err) {
    await viewer.page.screenshot({ path: path.join(shots, "failure-switch-viewer.png"), fullPage: true }).catch(() => {});
    await hostPage.screenshot({ path: path.join(shots, "failure-switch-host.png"), fullPage: true }).catch(() => {});
    reportHls(t, viewer.hlsReports);
    t.diagnostic(`server output:\n${server.logs().slice(-6000)}`);
    throw err;
  } finally {
    await Promise.all([viewer.context.close(), ...contexts.map((context) => context.close())]);
    await Promise.all(guestBrowsers.map((browser) => browser.close()));
  }
});
