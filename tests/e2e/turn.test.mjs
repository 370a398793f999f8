// @ts-check
/**
 * Media through a TURN relay: a real coturn (use-auth-secret with a
 * static-auth-secret) and a confcast server that hands out credentials for
 * it (`--turn-url`, `--turn-secret`). hana's page is opened with
 * `?ice=relay`, so her browser may only use the relay; alice connects
 * directly. Each sees and hears the other, and hana's selected candidate
 * is a relayed one. A second server gives credentials that live one second;
 * the test holds the page's `GET /ice-servers` answer back until they have
 * expired: coturn refuses them and the conference page says so.
 *
 * coturn refuses loopback peers, so the test gives the namespace a veth pair
 * (cft0 10.77.2.1 for confcast's media, cft1 10.77.2.2 for coturn) and
 * removes it afterwards. Needs the network namespace the test command makes
 * (scripts/test.sh) and `turnserver` (Debian's coturn).
 */

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";

import { DESKTOP, collectErrors } from "./browser.mjs";
import { colourName, launchWithFakeDevices, mainVideoColour, makeFakeMedia, pollUntil, toneLevels } from "./conference-media.mjs";
import { keepPeerConnections, selectedPair } from "./peer-stats.mjs";
import { startServer } from "./server.mjs";
import { addVethPair, ip } from "./veth.mjs";

const MEDIA_ADDRESS = "10.77.2.1";
const TURN_ADDRESS = "10.77.2.2";
const TURN_URL = `turn:${TURN_ADDRESS}:3478?transport=udp`;
const SECRET = randomBytes(16).toString("hex");
const PEOPLE = [
  { username: "hana", display_name: "Hana Host", password: "hana-secret-1", colour: "red", tone: 440 },
  { username: "alice", display_name: "Alice Green", password: "alice-secret-1", colour: "green", tone: 660 },
];
const TONES = PEOPLE.map((p) => p.tone);

/** @type {import("./server.mjs").RunningServer} */
let server;
/** @type {import("./server.mjs").RunningServer} */
let shortLived;
/** @type {Awaited<ReturnType<typeof makeFakeMedia>>} */
let media;
/** @type {import("playwright-core").Browser[]} */
let browsers = [];
/** @type {import("node:child_process").ChildProcess | null} */
let coturn = null;
let coturnLog = "";
/** @type {string} */
let coturnDir;

/** @type {{ remove: () => void } | undefined} */
let veth;

/** Starts coturn on the test address and waits until it listens. */
async function startCoturn() {
  coturnDir = await mkdtemp(path.join(tmpdir(), "confcast-e2e-coturn-"));
  const config = path.join(coturnDir, "turnserver.conf");
  await writeFile(
    config,
    [
      `listening-ip=${TURN_ADDRESS}`,
      `relay-ip=${TURN_ADDRESS}`,
      "listening-port=3478",
      "min-port=49152",
      "max-port=49300",
      "realm=confcast.test",
      "use-auth-secret",
      `static-auth-secret=${SECRET}`,
      "fingerprint",
      "no-tls",
      "no-dtls",
      "no-cli",
      "no-multicast-peers",
      // As docs/deploy.md advises: no relaying into private networks but to confcast's media address.
      "denied-peer-ip=10.0.0.0-10.255.255.255",
      `allowed-peer-ip=${MEDIA_ADDRESS}`,
      "log-file=stdout",
      "simple-log",
      "verbose",
      `pidfile=${path.join(coturnDir, "turnserver.pid")}`,
      `userdb=${path.join(coturnDir, "turndb")}`,
      "",
    ].join("\n"),
  );
  const child = spawn("turnserver", ["-c", config], { stdio: ["ignore", "pipe", "pipe"] });
  coturn = child;
  /** @param {Buffer} chunk */
  const collect = (chunk) => {
    coturnLog += chunk.toString("utf8");
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  await pollUntil(() => Promise.resolve(coturnLog), (log) => log.includes("Total General servers"), {
    timeout: 15_000,
    what: "coturn to start",
  });
}

before(async () => {
  veth = addVethPair("cft", MEDIA_ADDRESS, TURN_ADDRESS);
  // Both addresses are this machine's, so the kernel would send confcast's
  // answers to the relay (10.77.2.2) from 10.77.2.2 itself, an address coturn
  // has no permission for; on two machines they come from the media address.
  ip(["route", "replace", "local", TURN_ADDRESS, "dev", "cft1", "table", "local", "proto", "kernel", "scope", "host", "src", MEDIA_ADDRESS]);
  const turnArgs = ["--public-ip", MEDIA_ADDRESS, "--turn-url", TURN_URL, "--turn-secret", SECRET];
  [server, shortLived, media] = await Promise.all([
    startServer({ host: "0.0.0.0", args: turnArgs }),
    startServer({ host: "0.0.0.0", args: [...turnArgs, "--turn-ttl", "1"] }),
    makeFakeMedia(PEOPLE.map((p) => p.colour), TONES),
    startCoturn(),
  ]);
  browsers = await Promise.all(PEOPLE.map((p) => launchWithFakeDevices({ video: media.video(p.colour), audio: media.audio(p.tone) })));
});

after(async () => {
  await Promise.all(browsers.map((b) => b.close()));
  await server?.stop();
  await shortLived?.stop();
  await media?.remove();
  coturn?.kill("SIGTERM");
  if (coturnDir) await rm(coturnDir, { recursive: true, force: true });
  veth?.remove();
});

/**
 * A page for a person on `target`, registered there, whose peer
 * connections the test can inspect.
 * @param {import("playwright-core").Browser} browser
 * @param {import("./server.mjs").RunningServer} target
 * @param {{username: string, display_name: string, password: string}} person
 */
async function personPage(browser, target, { username, display_name, password }) {
  const context = await browser.newContext({ baseURL: target.baseUrl, viewport: DESKTOP });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  await page.addInitScript(keepPeerConnections);
  const registered = await context.request.post("/api/v1/auth/register", { data: { username, display_name, password } });
  assert.equal(registered.status(), 201, await registered.text());
  return page;
}

test("a relay-only browser meets through coturn with the server's credentials", { timeout: 150_000 }, async (t) => {
  const pages = await Promise.all(PEOPLE.map((person, i) => personPage(browsers[i], server, person)));
  const errors = pages.map((page, i) => collectErrors(page, PEOPLE[i].username));
  const [h, a] = pages;
  const created = await h.request.post("/api/v1/rooms", { data: { title: "Relayed" } });
  assert.equal(created.status(), 201, await created.text());
  const room = (await created.json()).id;
  const link = await h.request.post(`/api/v1/rooms/${room}/invite-links`, { data: {} });
  const accepted = await a.request.post(`/api/v1/invite-links/${encodeURIComponent((await link.json()).token)}/accept`);
  assert.ok(accepted.ok(), await accepted.text());

  // The credentials the page gets: coturn's scheme, for this user.
  const ice = await (await h.request.get("/api/v1/ice-servers")).json();
  t.diagnostic(`ice servers: ${JSON.stringify(ice.ice_servers.map((/** @type {any} */ s) => ({ ...s, credential: "…" })))}`);
  assert.deepEqual(ice.ice_servers[0].urls, [TURN_URL]);
  assert.match(ice.ice_servers[0].username, /^\d+:hana$/);

  await h.goto(`/rooms/${room}?ice=relay`);
  await a.goto(`/rooms/${room}`);
  for (const page of pages) await page.getByRole("button", { name: "Join conference", exact: true }).click();
  for (const page of pages) {
    await page
      .waitForFunction(() => document.documentElement.dataset.conferenceState === "connected", null, { timeout: 45_000 })
      .catch(async (err) => {
        t.diagnostic(`page says: ${await page.evaluate(() => document.body.innerText.slice(0, 300))}`);
        t.diagnostic(
          `pairs: ${await page.evaluate(async () => {
            const pcs = /** @type {any} */ (window).__pcs ?? [];
            /** @type {any[]} */
            const out = [];
            for (const pc of pcs) {
              const stats = await pc.getStats();
              stats.forEach((/** @type {any} */ s) => {
                if (s.type === "candidate-pair" || s.type === "local-candidate" || s.type === "remote-candidate") out.push(s);
              });
            }
            return JSON.stringify(out);
          })}`,
        );
        t.diagnostic(`server: ${server.logs().slice(-3000)}`);
        t.diagnostic(`coturn: ${coturnLog.slice(-3000)}`);
        throw err;
      });
  }
  for (const [i, page] of pages.entries()) {
    const other = PEOPLE[1 - i];
    await pollUntil(async () => colourName(await mainVideoColour(page)), (c) => c === other.colour, {
      what: `${PEOPLE[i].username} to see ${other.colour}`,
    });
    const levels = await pollUntil(
      () => toneLevels(page, TONES, 2000),
      (l) => l[other.tone] >= 30 && l[PEOPLE[i].tone] < 20,
      { timeout: 30_000, interval: 0, what: `${PEOPLE[i].username} to hear ${other.tone} Hz only` },
    );
    t.diagnostic(`${PEOPLE[i].username} hears ${JSON.stringify(levels)}`);
  }
  const pair = await pollUntil(() => selectedPair(h), (p) => p !== null && p.bytesReceived > 0, { what: "hana's selected pair" });
  t.diagnostic(`hana: ${JSON.stringify(pair)}`);
  assert.equal(pair?.localType, "relay");
  assert.deepEqual(errors.flat(), []);
});

test("expired TURN credentials are refused and the page says so", { timeout: 90_000 }, async (t) => {
  const page = await personPage(browsers[0], shortLived, PEOPLE[0]);
  const created = await page.request.post("/api/v1/rooms", { data: { title: "Too late" } });
  const room = (await created.json()).id;
  // The credentials live one second; the page gets them after three.
  await page.route("**/api/v1/ice-servers", async (route) => {
    const response = await route.fetch();
    await new Promise((resolve) => setTimeout(resolve, 3000));
    await route.fulfill({ response });
  });
  await page.goto(`/rooms/${room}?ice=relay`);
  await page.getByRole("button", { name: "Join conference", exact: true }).click();
  const status = page.getByText(/The media relay \(TURN\) refused the connection: 401/);
  await status.first().waitFor({ timeout: 30_000 });
  t.diagnostic(`page: ${await status.first().textContent()}`);
  const state = await page.evaluate(() => document.documentElement.dataset.conferenceState);
  assert.ok(state === "reconnecting" || state === "failed", state);
  // coturn's own word: it found no valid credentials for that (expired) name.
  assert.match(coturnLog, /Cannot find credentials of user <\d+:hana>/);
});
