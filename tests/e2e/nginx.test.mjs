// @ts-check
/**
 * confcast behind a real nginx, configured by docs/nginx.conf (only the
 * addresses, ports, certificate and cache paths are changed for the test).
 * nginx terminates TLS with a certificate Chromium trusts by its public key;
 * confcast runs over plain HTTP with --trusted-proxy 127.0.0.1/32.
 *
 * Through nginx a user registers, logs out and in, and joins their room's
 * conference with a fake camera (the signalling WebSocket passes nginx; the
 * session cookie is Secure because nginx says the client came over HTTPS),
 * then goes on air. Two viewers fetch the broadcast's LL-HLS: the second
 * one's parts come from nginx's cache (X-Cache-Status: HIT, and confcast's
 * request counter for HLS resources does not move), a blocking playlist
 * request and the part named by the preload hint are held until the part
 * exists, and two viewers asking for that part at once cost confcast one
 * request. Finally the client address: what nginx forwards is what confcast
 * logs for a failed login, while the same headers sent straight to confcast
 * from an address outside the trusted network are ignored.
 */

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile, mkdir } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { request as playwrightRequest } from "playwright-core";

import { DESKTOP, collectErrors, registerInUi } from "./browser.mjs";
import { makeCertificate } from "./certs.mjs";
import { launchWithFakeDevices, makeFakeMedia, pollUntil } from "./conference-media.mjs";
import { ROOT, freePort, startServer } from "./server.mjs";

process.env.CONFCAST_MEDIA_PORT = "0";

const USER = { username: "nico", displayName: "Nico Nginx", password: "nico-secret-1" };
const HLS_ROUTE = 'route="/hls/{room}/{broadcast}/{name}"';

/** @type {import("./server.mjs").RunningServer} */
let server;
/** @type {{baseUrl: string, logs: () => string, stop: () => Promise<void>}} */
let nginx;
/** @type {Awaited<ReturnType<typeof makeFakeMedia>>} */
let media;
/** @type {import("playwright-core").Browser} */
let browser;
/** @type {string} */
let scratch;

/**
 * `text` with `from` replaced by `to`, which must be there exactly once.
 * @param {string} text
 * @param {string} from
 * @param {string} to
 */
function replaceOnce(text, from, to) {
  assert.equal(text.split(from).length, 2, `docs/nginx.conf has "${from}" once`);
  return text.replace(from, () => to);
}

/**
 * Starts nginx (as root, no daemon, everything in a temporary prefix) with
 * docs/nginx.conf in front of the confcast at `upstream`.
 * @param {string} dir
 * @param {string} upstream e.g. 127.0.0.1:40123
 * @param {{cert: string, key: string}} certificate
 */
async function startNginx(dir, upstream, certificate) {
  const [httpsPort, httpPort] = [await freePort(), await freePort()];
  let site = await readFile(path.join(ROOT, "docs", "nginx.conf"), "utf8");
  site = replaceOnce(site, "server 127.0.0.1:8080;", `server ${upstream};`);
  site = replaceOnce(site, "/var/cache/nginx/confcast", path.join(dir, "cache"));
  site = replaceOnce(site, "/etc/letsencrypt/live/confcast.example.org/fullchain.pem", certificate.cert);
  site = replaceOnce(site, "/etc/letsencrypt/live/confcast.example.org/privkey.pem", certificate.key);
  site = replaceOnce(site, "    listen 443 ssl http2;", `    listen 127.0.0.1:${httpsPort} ssl http2;`);
  site = replaceOnce(site, "    listen [::]:443 ssl http2;\n", "");
  site = replaceOnce(site, "    listen 80;", `    listen 127.0.0.1:${httpPort};`);
  site = replaceOnce(site, "    listen [::]:80;\n", "");
  await writeFile(path.join(dir, "confcast.conf"), site);
  await writeFile(
    path.join(dir, "nginx.conf"),
    [
      "user root;",
      "worker_processes 1;",
      "daemon off;",
      `pid ${path.join(dir, "nginx.pid")};`,
      "error_log stderr notice;",
      "events { worker_connections 512; }",
      "http {",
      `  access_log ${path.join(dir, "access.log")};`,
      `  client_body_temp_path ${path.join(dir, "body")};`,
      `  proxy_temp_path ${path.join(dir, "proxy")};`,
      `  fastcgi_temp_path ${path.join(dir, "fastcgi")};`,
      `  uwsgi_temp_path ${path.join(dir, "uwsgi")};`,
      `  scgi_temp_path ${path.join(dir, "scgi")};`,
      `  include ${path.join(dir, "confcast.conf")};`,
      "}",
      "",
    ].join("\n"),
  );
  await mkdir(path.join(dir, "logs"), { recursive: true });
  const child = spawn("nginx", ["-p", dir, "-c", path.join(dir, "nginx.conf"), "-e", "stderr"], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  child.stderr.on("data", (chunk) => (output += chunk));
  /** @type {Promise<void>} */
  const exited = new Promise((resolve) => child.once("exit", () => resolve()));
  const baseUrl = `https://127.0.0.1:${httpsPort}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited (code ${child.exitCode}):\n${output}`);
    const answer = await raw(`${baseUrl}/healthz`).catch(() => null);
    if (answer?.status === 200) break;
    if (Date.now() > deadline) throw new Error(`nginx did not pass /healthz on:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const stop = async () => {
    if (child.exitCode === null) {
      child.kill("SIGQUIT");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    }
  };
  return { baseUrl, logs: () => output, stop };
}

/**
 * One HTTP(S) request from a chosen local address, any certificate accepted.
 * @param {string} url
 * @param {{method?: string, headers?: Record<string, string>, body?: string, localAddress?: string}} [options]
 * @returns {Promise<{status: number, headers: import("node:http").IncomingHttpHeaders, body: string}>}
 */
function raw(url, { method = "GET", headers = {}, body, localAddress } = {}) {
  const send = url.startsWith("https:") ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(url, { method, headers, localAddress, rejectUnauthorized: false, timeout: 20_000 }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (text += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on("timeout", () => req.destroy(new Error(`${url} timed out`)));
    req.on("error", reject);
    req.end(body);
  });
}

/** How many HLS resource requests confcast itself has answered. */
async function hlsRequestsServed() {
  const text = (await raw(`${server.baseUrl}/metrics`)).body;
  let total = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("http_requests_total{") && line.includes(HLS_ROUTE)) total += Number(line.split(" ").pop());
  }
  return total;
}

before(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), "confcast-e2e-nginx-"));
  const certificate = await makeCertificate(scratch);
  [server, media] = await Promise.all([
    startServer({ args: ["--trusted-proxy", "127.0.0.1/32", "--log-format", "json"] }),
    makeFakeMedia(["red"], [440]),
  ]);
  nginx = await startNginx(scratch, new URL(server.baseUrl).host, certificate);
  browser = await launchWithFakeDevices({ video: media.video("red"), audio: media.audio(440) }, [
    `--ignore-certificate-errors-spki-list=${certificate.spki}`,
  ]);
});

after(async () => {
  await browser?.close();
  await nginx?.stop();
  await server?.stop();
  await media?.remove();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

test("through nginx: accounts, the conference WebSocket, cached LL-HLS, forwarded client addresses", { timeout: 180_000 }, async (t) => {
  t.diagnostic(`nginx ${nginx.baseUrl} in front of confcast ${server.baseUrl}`);
  const context = await browser.newContext({ baseURL: nginx.baseUrl, viewport: DESKTOP });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  const errors = collectErrors(page, USER.username);
  const viewers = await Promise.all([0, 1].map(() => playwrightRequest.newContext({ baseURL: nginx.baseUrl, ignoreHTTPSErrors: true })));
  try {
    // Register and log in through nginx. confcast speaks plain HTTP, so a
    // Secure cookie (and HSTS) means it believed nginx's X-Forwarded-Proto.
    const registered = page.waitForResponse((r) => r.url().endsWith("/api/v1/auth/register"));
    await registerInUi(page, USER);
    const registration = await registered;
    assert.equal(registration.status(), 201);
    assert.match((await registration.allHeaders())["strict-transport-security"] ?? "", /^max-age=\d+/);
    await page.getByRole("heading", { name: "Home", level: 1 }).waitFor();
    await page.getByRole("button", { name: "Log out" }).click();
    await page.getByRole("link", { name: "Log in" }).first().waitFor();
    await page.goto("/login");
    await page.getByLabel("Username").fill(USER.username);
    await page.getByLabel("Password").fill(USER.password);
    await page.getByRole("button", { name: "Log in", exact: true }).click();
    await page.getByRole("heading", { name: "Home", level: 1 }).waitFor();
    const cookie = (await context.cookies()).find((c) => c.name === "confcast_session");
    assert.equal(cookie?.secure, true, "the session cookie is Secure");

    // The conference: its WebSocket goes through nginx (media goes straight
    // to confcast's UDP port).
    // (From the page: the test's own requests would not trust the certificate.)
    const room = await page.evaluate(async () => (await (await fetch("/api/v1/me")).json()).rooms[0]);
    await page.goto(`/rooms/${encodeURIComponent(room.id)}`);
    await page.getByRole("button", { name: "Join conference", exact: true }).click();
    await page.waitForFunction(() => document.documentElement.dataset.conferenceState === "connected", null, { timeout: 30_000 });
    t.diagnostic("joined the conference through nginx");

    const onAir = await page.evaluate(async (id) => {
      const response = await fetch(`/api/v1/rooms/${encodeURIComponent(id)}/broadcast`, {
        method: "PUT",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ on: true, title: "Through nginx" }),
      });
      return { status: response.status, text: await response.text() };
    }, room.id);
    assert.equal(onAir.status, 200, onAir.text);

    // LL-HLS: the media playlist, once it lists a few parts.
    const [first, second] = viewers;
    const index = await first.get(`/hls/${encodeURIComponent(room.id)}/index.m3u8`);
    assert.equal(index.status(), 200, await index.text());
    const variant = (await index.text()).split("\n").find((line) => line && !line.startsWith("#"));
    assert.ok(variant, "the multivariant playlist names the media playlist");
    const mediaUrl = new URL(variant, `${nginx.baseUrl}/hls/${encodeURIComponent(room.id)}/index.m3u8`);
    const playlist = await pollUntil(
      async () => (await first.get(mediaUrl.pathname + mediaUrl.search)).text(),
      (text) => (text.match(/#EXT-X-PART:/g) ?? []).length >= 4,
      { timeout: 45_000, what: "a playlist with four parts" },
    );
    const base = new URL(".", mediaUrl);
    const uris = [...playlist.matchAll(/#EXT-X-(?:MAP|PART):.*?URI="([^"]+)"/g)].map((m) => new URL(m[1], base).pathname);
    t.diagnostic(`fetching ${uris.length} resources: ${uris.map((u) => u.split("/").pop()).join(" ")}`);

    // The first viewer fetches them (from confcast, through the cache)…
    /** @type {Map<string, Buffer>} */
    const bodies = new Map();
    for (const uri of uris) {
      const response = await first.get(uri);
      assert.equal(response.status(), 200, uri);
      assert.equal(response.headers()["x-cache-status"], "MISS", `${uri} the first time`);
      bodies.set(uri, await response.body());
    }
    // …the second gets the same bytes from nginx, confcast answers nothing.
    const served = await hlsRequestsServed();
    for (const uri of uris) {
      const response = await second.get(uri);
      assert.equal(response.status(), 200, uri);
      assert.equal(response.headers()["x-cache-status"], "HIT", `${uri} the second time`);
      assert.ok((await response.body()).equals(/** @type {Buffer} */ (bodies.get(uri))), `${uri}: the same bytes`);
    }
    assert.equal(await hlsRequestsServed(), served, "confcast served none of the second viewer's parts");
    t.diagnostic(`second viewer: ${uris.length} HITs, confcast's HLS request count stayed at ${served}`);

    // A blocking playlist request for the part named by the preload hint is
    // held until it exists; that part, asked for by both viewers at once
    // before it exists, costs confcast one request.
    const latest = await (await first.get(mediaUrl.pathname + mediaUrl.search)).text();
    const hint = latest.match(/#EXT-X-PRELOAD-HINT:TYPE=PART,URI="(part(\d+)\.(\d+)\.m4s)"/);
    assert.ok(hint, `a preload hint in:\n${latest}`);
    const [, hinted, msn, part] = hint;
    const hintedPath = new URL(hinted, base).pathname;
    const before = await hlsRequestsServed();
    const asked = Date.now();
    const query = `${mediaUrl.search ? `${mediaUrl.search}&` : "?"}_HLS_msn=${msn}&_HLS_part=${part}`;
    const [held, partA, partB] = await Promise.all([
      first.get(mediaUrl.pathname + query),
      first.get(hintedPath),
      second.get(hintedPath),
    ]);
    const waited = Date.now() - asked;
    assert.equal(held.status(), 200);
    assert.ok((await held.text()).includes(hinted), "the held playlist lists the part it waited for");
    assert.equal(partA.status(), 200);
    assert.equal(partB.status(), 200);
    assert.ok((await partA.body()).equals(await partB.body()), "both viewers got the same part");
    const statuses = [partA.headers()["x-cache-status"], partB.headers()["x-cache-status"]].sort();
    assert.equal(statuses.filter((s) => s === "MISS").length, 1, `one of them went to confcast: ${statuses}`);
    assert.equal(await hlsRequestsServed(), before + 2, "confcast answered the held playlist and the part once");
    t.diagnostic(`held playlist and part ${hinted} answered after ${waited} ms; cache statuses ${statuses.join(", ")}`);

    // Client addresses. Through nginx from 127.0.0.3, confcast logs that
    // address (nginx's own is 127.0.0.1)…
    const wrong = JSON.stringify({ username: USER.username, password: "not-the-password" });
    const json = { "Content-Type": "application/json" };
    const viaNginx = await raw(`${nginx.baseUrl}/api/v1/auth/login`, { method: "POST", headers: json, body: wrong, localAddress: "127.0.0.3" });
    assert.equal(viaNginx.status, 401);
    await pollUntil(async () => server.logs(), (logs) => logs.includes('"addr":"127.0.0.3"'), { timeout: 5_000, what: "the forwarded address in the log" });
    // …while headers sent straight to confcast from outside the trusted
    // network are ignored: the log names the real peer, and a forged
    // X-Forwarded-Proto does not make the cookie Secure.
    const forged = { ...json, "X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https" };
    const direct = await raw(`${server.baseUrl}/api/v1/auth/login`, { method: "POST", headers: forged, body: wrong, localAddress: "127.0.0.2" });
    assert.equal(direct.status, 401);
    await pollUntil(async () => server.logs(), (logs) => logs.includes('"addr":"127.0.0.2"'), { timeout: 5_000, what: "the real peer in the log" });
    assert.ok(!server.logs().includes("203.0.113.9"), "the forged address is not believed");
    const good = JSON.stringify({ username: USER.username, password: USER.password });
    const directLogin = await raw(`${server.baseUrl}/api/v1/auth/login`, { method: "POST", headers: forged, body: good, localAddress: "127.0.0.2" });
    assert.equal(directLogin.status, 200, directLogin.body);
    assert.doesNotMatch(String(directLogin.headers["set-cookie"]), /Secure/);
    assert.equal(directLogin.headers["strict-transport-security"], undefined);
    assert.deepEqual(errors, [], "no script errors");
  } finally {
    await Promise.all(viewers.map((v) => v.dispose()));
    await context.close();
  }
});
