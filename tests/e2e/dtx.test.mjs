// @ts-check
/**
 * Opus DTX from a real Chromium. The server answers Opus with `usedtx=1`;
 * Chromium honours it, so a participant whose microphone is silent (a
 * digital-silence file) sends a comfort-noise refresh and one DTX frame
 * about every 400 ms instead of a packet every 20 ms, while a participant
 * playing a tone keeps sending 50 packets a second. Counted from each
 * page's own `getStats()` (the outbound audio stream's `packetsSent`; the
 * page's connections are kept by `keepPeerConnections`), and the talker is
 * still heard by the silent one.
 */

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";

import { collectErrors, registerInUi } from "./browser.mjs";
import { launchWithFakeDevices, makeFakeMedia, pollUntil, toneLevels } from "./conference-media.mjs";
import { keepPeerConnections } from "./peer-stats.mjs";
import { startServer } from "./server.mjs";

process.env.CONFCAST_MEDIA_PORT = "0";

const run = promisify(execFile);

/** @type {import("./server.mjs").RunningServer} */
let server;
/** @type {Awaited<ReturnType<typeof makeFakeMedia>>} */
let media;
/** @type {string} */
let silentWav;
/** @type {import("playwright-core").Browser[]} */
const browsers = [];

before(async () => {
  [server, media] = await Promise.all([startServer(), makeFakeMedia(["red", "blue"], [440])]);
  silentWav = path.join(media.dir, "silence.wav");
  await run("ffmpeg", ["-loglevel", "error", "-y", "-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono", "-t", "5", silentWav]);
});

after(async () => {
  await Promise.all(browsers.map((b) => b.close()));
  await server?.stop();
  await media?.remove();
});

/**
 * Audio packets the page has sent so far, and whether the server's answer
 * asked for DTX.
 * @param {import("playwright-core").Page} page
 * @returns {Promise<{sent: number, dtxAsked: boolean}>}
 */
function audioSent(page) {
  return page.evaluate(async () => {
    /** @type {RTCPeerConnection[]} */
    const pcs = /** @type {any} */ (window).__pcs ?? [];
    const pc = pcs[pcs.length - 1];
    if (!pc) return { sent: 0, dtxAsked: false };
    let sent = 0;
    (await pc.getStats()).forEach((s) => {
      if (s.type === "outbound-rtp" && s.kind === "audio") sent += s.packetsSent ?? 0;
    });
    const sdp = pc.remoteDescription?.sdp ?? "";
    const opus = /a=rtpmap:(\d+) opus\//i.exec(sdp)?.[1];
    const fmtp = opus ? new RegExp(`a=fmtp:${opus} ([^\\r\\n]*)`).exec(sdp)?.[1] ?? "" : "";
    return { sent, dtxAsked: fmtp.split(";").some((p) => p.trim() === "usedtx=1") };
  });
}

/**
 * Packets per second the page sends over `ms`.
 * @param {import("playwright-core").Page} page
 * @param {number} ms
 */
async function sendRate(page, ms) {
  const first = await audioSent(page);
  const started = Date.now();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const second = await audioSent(page);
  return (second.sent - first.sent) / ((Date.now() - started) / 1000);
}

test("a silent Chromium microphone sends Opus DTX, a talking one every 20 ms", { timeout: 120_000 }, async (t) => {
  const quiet = await launchWithFakeDevices({ video: media.video("blue"), audio: silentWav });
  const talker = await launchWithFakeDevices({ video: media.video("red"), audio: media.audio(440) });
  browsers.push(quiet, talker);
  const pages = [];
  /** @type {string[][]} */
  const errors = [];
  for (const [browser, name] of /** @type {const} */ ([[talker, "tara"], [quiet, "quinn"]])) {
    const context = await browser.newContext({ baseURL: server.baseUrl });
    context.setDefaultTimeout(15_000);
    const page = await context.newPage();
    errors.push(collectErrors(page, name));
    await page.addInitScript(keepPeerConnections);
    await registerInUi(page, { username: name, displayName: name, password: `${name}-secret-1` });
    await page.getByRole("heading", { name: "Home", level: 1 }).waitFor();
    pages.push(page);
  }
  const [tara, quinn] = pages;
  await tara.getByLabel("Room title").fill("Quiet call");
  await tara.getByRole("button", { name: "Create room" }).click();
  await tara.getByRole("heading", { name: "Quiet call", level: 1 }).waitFor();
  const roomPath = new URL(tara.url()).pathname;
  const link = await tara.request.post(`/api/v1/rooms/${roomPath.split("/").pop()}/invite-links`, { data: {} });
  assert.equal(link.status(), 201, await link.text());
  const { token } = await link.json();
  const accepted = await quinn.request.post(`/api/v1/invite-links/${encodeURIComponent(token)}/accept`);
  assert.ok(accepted.ok(), await accepted.text());
  await quinn.goto(roomPath);
  for (const page of pages) {
    await page.getByRole("button", { name: "Join conference", exact: true }).click();
    await page.waitForFunction(() => document.documentElement.dataset.conferenceState === "connected", null, { timeout: 30_000 });
  }
  for (const page of pages) {
    assert.equal((await audioSent(page)).dtxAsked, true, "the server's answer asks for usedtx=1");
  }

  // Once sending has settled (DTX starts after 200 ms of silence).
  await pollUntil(() => audioSent(quinn), (s) => s.sent > 0, { what: "the silent page to send audio" });
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const [silentRate, talkingRate] = await Promise.all([sendRate(quinn, 5000), sendRate(tara, 5000)]);
  t.diagnostic(`audio packets per second: silent microphone ${silentRate.toFixed(1)}, tone ${talkingRate.toFixed(1)}`);
  assert.ok(talkingRate >= 45, `the talking page sends every 20 ms: ${talkingRate}/s`);
  // Chrome with DTX: two packets per ~420 ms while silent (about 5/s); without it, 50.
  assert.ok(silentRate > 0 && silentRate <= 10, `the silent page sends DTX: ${silentRate}/s`);

  // And the talker is heard by the silent one: DTX costs the mix nothing.
  const levels = await pollUntil(() => toneLevels(quinn, [440], 2000), (l) => l[440] >= 30, { what: "quinn to hear 440 Hz" });
  t.diagnostic(`quinn hears 440 Hz at ${levels[440].toFixed(1)} dB above the floor`);
  assert.deepEqual(errors.flat(), []);
});
