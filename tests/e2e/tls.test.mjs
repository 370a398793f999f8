// @ts-check
/**
 * HTTPS built into the server, end to end in Chromium. The server runs with
 * --tls-self-signed (its certificate is made in the data folder); Chromium
 * trusts exactly that certificate by its public key, as a person would after
 * checking its fingerprint. Over https:// a user registers, logs out and in
 * again through the pages: the session cookie is Secure (and HttpOnly),
 * responses carry HSTS, the page is a secure context, and camera and
 * microphone work there: the user joins their room's conference (WebSocket
 * over TLS, WebRTC media) with a red fake camera.
 */

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";

import { DESKTOP, collectErrors, registerInUi } from "./browser.mjs";
import { spkiHash } from "./certs.mjs";
import { launchWithFakeDevices, makeFakeMedia } from "./conference-media.mjs";
import { startServer } from "./server.mjs";

process.env.CONFCAST_MEDIA_PORT = "0";

const USER = { username: "tess", displayName: "Tess Tls", password: "tess-secret-1" };

/** @type {import("./server.mjs").RunningServer} */
let server;
/** @type {Awaited<ReturnType<typeof makeFakeMedia>>} */
let media;
/** @type {import("playwright-core").Browser} */
let browser;
/** @type {string} */
let spki;

before(async () => {
  [server, media] = await Promise.all([startServer({ args: ["--tls-self-signed"], https: true }), makeFakeMedia(["red"], [440])]);
  const pem = await readFile(path.join(server.dataDir, "tls", "self-signed-cert.pem"), "utf8");
  spki = spkiHash(pem);
  browser = await launchWithFakeDevices({ video: media.video("red"), audio: media.audio(440) }, [`--ignore-certificate-errors-spki-list=${spki}`]);
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await media?.remove();
});

test("over HTTPS: Secure cookie, HSTS, a secure context, and a conference with camera and microphone", { timeout: 120_000 }, async (t) => {
  assert.ok(server.baseUrl.startsWith("https://"), server.baseUrl);
  t.diagnostic(`${server.baseUrl}, certificate public key sha256/${spki}`);
  const context = await browser.newContext({ baseURL: server.baseUrl, viewport: DESKTOP });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  const errors = collectErrors(page, USER.username);
  try {
    // Registering over https: the answer sets a Secure cookie and HSTS.
    const registered = page.waitForResponse((r) => r.url().endsWith("/api/v1/auth/register"));
    await registerInUi(page, USER);
    const response = await registered;
    assert.equal(response.status(), 201);
    assert.match((await response.allHeaders())["strict-transport-security"] ?? "", /^max-age=\d+/);
    await page.getByRole("heading", { name: "Home", level: 1 }).waitFor();
    const cookie = (await context.cookies()).find((c) => c.name === "confcast_session");
    assert.ok(cookie, "a session cookie");
    assert.equal(cookie.secure, true, "Secure");
    assert.equal(cookie.httpOnly, true, "HttpOnly");
    assert.equal(await page.evaluate(() => window.isSecureContext && location.protocol), "https:");

    // Out and in again through the pages.
    await page.getByRole("button", { name: "Log out" }).click();
    await page.getByRole("link", { name: "Log in" }).first().waitFor();
    await page.goto("/login");
    await page.getByLabel("Username").fill(USER.username);
    await page.getByLabel("Password").fill(USER.password);
    const loggedIn = page.waitForResponse((r) => r.url().endsWith("/api/v1/auth/login"));
    await page.getByRole("button", { name: "Log in", exact: true }).click();
    const login = await loggedIn;
    assert.equal(login.status(), 200);
    assert.match((await login.allHeaders())["set-cookie"] ?? "", /; Secure/);
    await page.getByRole("heading", { name: "Home", level: 1 }).waitFor();

    // The personal room's conference: getUserMedia is allowed on this
    // origin, the signalling WebSocket runs over TLS, media flows.
    // (From the page: the test's own requests would not trust the certificate.)
    const room = await page.evaluate(async () => (await (await fetch("/api/v1/me")).json()).rooms[0]);
    await page.goto(`/rooms/${encodeURIComponent(room.id)}`);
    await page.getByRole("button", { name: "Join conference", exact: true }).click();
    await page.waitForFunction(() => document.documentElement.dataset.conferenceState === "connected", null, { timeout: 30_000 });
    const tracks = await page.evaluate(async () => {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
      const kinds = stream.getTracks().map((track) => `${track.kind}:${track.readyState}`);
      for (const track of stream.getTracks()) track.stop();
      return kinds.sort();
    });
    assert.deepEqual(tracks, ["audio:live", "video:live"]);
    // The page's own picture arrives back from the server (alone in the
    // room, one is shown one's own video): it is red.
    const colour = await page.waitForFunction(() => {
      const video = document.querySelector("video.main-video");
      if (!(video instanceof HTMLVideoElement) || video.readyState < 2 || video.videoWidth === 0) return null;
      const canvas = document.createElement("canvas");
      canvas.width = 16;
      canvas.height = 12;
      const context2d = canvas.getContext("2d");
      if (!context2d) return null;
      context2d.drawImage(video, 0, 0, 16, 12);
      const { data } = context2d.getImageData(0, 0, 16, 12);
      let r = 0;
      let g = 0;
      let b = 0;
      for (let i = 0; i < data.length; i += 4) {
        r += data[i];
        g += data[i + 1];
        b += data[i + 2];
      }
      const n = data.length / 4;
      return r / n > 150 && g / n < 90 && b / n < 90 ? { r: r / n, g: g / n, b: b / n } : null;
    }, null, { timeout: 30_000 });
    t.diagnostic(`own video back over WebRTC: ${JSON.stringify(await colour.jsonValue())}`);
    assert.deepEqual(errors, [], "no script errors");
  } finally {
    await context.close();
  }
});
