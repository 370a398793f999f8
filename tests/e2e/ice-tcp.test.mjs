// @ts-check
/**
 * A conference with UDP blocked: an nftables rule in the test's network
 * namespace drops every UDP packet, so the browsers can reach the server's
 * media only through its ICE-TCP candidate (RFC 6544, passive, on the TCP
 * port with the media port's number). Two people join (hana: red camera,
 * 440 Hz; alice: green, 660 Hz); each sees the other's colour and hears the
 * other's tone, and each browser's selected candidate pair is TCP. Then a
 * client that sends garbage to the ICE-TCP port is cut off while the
 * conference goes on, and an anonymous viewer watches the room on air
 * over WebRTC (WHEP), through ICE-TCP too.
 *
 * Needs the network namespace the test command makes (scripts/test.sh) and
 * `nft` (nftables); the rule is removed afterwards.
 */

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { connect } from "node:net";
import { after, before, test } from "node:test";

import { DESKTOP, collectErrors } from "./browser.mjs";
import { colourName, launchWithFakeDevices, mainVideoColour, makeFakeMedia, pollUntil, toneLevels } from "./conference-media.mjs";
import { keepPeerConnections, selectedPair } from "./peer-stats.mjs";
import { startServer } from "./server.mjs";

const TABLE = "confcast_no_udp";
const PEOPLE = [
  { username: "hana", display_name: "Hana Host", password: "hana-secret-1", colour: "red", tone: 440 },
  { username: "alice", display_name: "Alice Green", password: "alice-secret-1", colour: "green", tone: 660 },
];
const TONES = PEOPLE.map((p) => p.tone);

/** @type {import("./server.mjs").RunningServer} */
let server;
/** @type {Awaited<ReturnType<typeof makeFakeMedia>>} */
let media;
/** @type {import("playwright-core").Browser[]} */
let browsers = [];

function unblockUdp() {
  try {
    execFileSync("nft", ["delete", "table", "inet", TABLE], { stdio: ["ignore", "ignore", "pipe"] });
  } catch {
    // Not there.
  }
}

before(async () => {
  unblockUdp();
  // Every UDP packet in this namespace is dropped, both ways.
  execFileSync("nft", ["-f", "-"], {
    input: `table inet ${TABLE} {
      chain output { type filter hook output priority 0; meta l4proto udp drop; }
      chain input { type filter hook input priority 0; meta l4proto udp drop; }
    }`,
    stdio: ["pipe", "ignore", "pipe"],
  });
  [server, media] = await Promise.all([startServer(), makeFakeMedia(PEOPLE.map((p) => p.colour), TONES)]);
  browsers = await Promise.all(PEOPLE.map((p) => launchWithFakeDevices({ video: media.video(p.colour), audio: media.audio(p.tone) })));
});

after(async () => {
  await Promise.all(browsers.map((b) => b.close()));
  await server?.stop();
  await media?.remove();
  unblockUdp();
});

test("with UDP blocked, two people meet over ICE-TCP: colours and tones arrive", { timeout: 150_000 }, async (t) => {
  /** @type {string[][]} */
  const errors = [];
  const pages = [];
  for (const [i, person] of PEOPLE.entries()) {
    const context = await browsers[i].newContext({ baseURL: server.baseUrl, viewport: DESKTOP });
    context.setDefaultTimeout(15_000);
    const page = await context.newPage();
    await page.addInitScript(keepPeerConnections);
    errors.push(collectErrors(page, person.username));
    const { username, display_name, password } = person;
    const registered = await context.request.post("/api/v1/auth/register", { data: { username, display_name, password } });
    assert.equal(registered.status(), 201, await registered.text());
    pages.push(page);
  }
  const [h, a] = pages;
  const created = await h.request.post("/api/v1/rooms", { data: { title: "Behind a firewall" } });
  assert.equal(created.status(), 201, await created.text());
  const room = (await created.json()).id;
  const link = await h.request.post(`/api/v1/rooms/${room}/invite-links`, { data: {} });
  const { token } = await link.json();
  const accepted = await a.request.post(`/api/v1/invite-links/${encodeURIComponent(token)}/accept`);
  assert.ok(accepted.ok(), await accepted.text());

  for (const page of pages) {
    await page.goto(`/rooms/${room}`);
    await page.getByRole("button", { name: "Join conference", exact: true }).click();
  }
  for (const page of pages) {
    await page.waitForFunction(() => document.documentElement.dataset.conferenceState === "connected", null, { timeout: 45_000 });
  }

  // Each sees the other's camera and hears the other's tone (not their own).
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

  // ... and over TCP: the selected pair's candidates are TCP ones.
  for (const [i, page] of pages.entries()) {
    const pair = await pollUntil(() => selectedPair(page), (p) => p !== null && p.bytesReceived > 0, {
      what: `${PEOPLE[i].username}'s selected candidate pair`,
    });
    t.diagnostic(`${PEOPLE[i].username}: ${JSON.stringify(pair)}`);
    assert.equal(pair?.protocol, "tcp");
    assert.equal(pair?.remoteProtocol, "tcp");
  }

  // Garbage on the ICE-TCP port closes that connection and nothing else.
  const port = (await selectedPair(h))?.remotePort ?? 0;
  assert.ok(port > 0);
  const closed = await new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    socket.on("close", () => resolve(true));
    socket.on("error", reject);
    setTimeout(() => reject(new Error("the server kept a garbage connection open")), 10_000);
  });
  assert.equal(closed, true);
  await pollUntil(() => Promise.resolve(server.logs()), (logs) => /ICE-TCP connection closed.*bad framing/.test(logs), {
    what: "the server to log the bad connection",
  });
  await pollUntil(async () => colourName(await mainVideoColour(a)), (c) => c === "red", { what: "alice to still see red" });
  assert.equal(await h.evaluate(() => document.documentElement.dataset.conferenceState), "connected");

  // The room goes on air; an anonymous viewer watches with low latency
  // (WHEP), which reaches the server over ICE-TCP as well.
  const onAir = await h.request.put(`/api/v1/rooms/${room}/broadcast`, { data: { on: true, title: "Live behind a firewall" } });
  assert.ok(onAir.ok(), await onAir.text());
  const viewerContext = await browsers[1].newContext({ baseURL: server.baseUrl, viewport: DESKTOP });
  viewerContext.setDefaultTimeout(15_000);
  const viewer = await viewerContext.newPage();
  await viewer.addInitScript(keepPeerConnections);
  errors.push(collectErrors(viewer, "viewer"));
  await viewer.goto(`/watch/${room}`);
  // Chromium offers a loopback candidate only to a page that has had media
  // permission (see viewer.test.mjs), so the page opens a microphone once.
  await viewer.evaluate(async () => {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    for (const track of stream.getTracks()) track.stop();
  });
  await viewer.getByRole("button", { name: "Low latency (WebRTC)" }).click();
  const watched = await pollUntil(() => selectedPair(viewer), (p) => p !== null && p.bytesReceived > 100_000, {
    timeout: 30_000,
    what: "the WebRTC viewer to receive the broadcast",
  });
  t.diagnostic(`viewer: ${JSON.stringify(watched)}`);
  assert.equal(watched?.protocol, "tcp");
  await pollUntil(() => viewer.evaluate(() => document.querySelector("video")?.currentTime ?? 0), (time) => time > 1, {
    what: "the viewer's video to play",
  });

  assert.deepEqual(errors.flat(), []);
});
