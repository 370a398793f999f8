// @ts-check
/**
 * Split nodes: two confcast processes on loopback, a conference node
 * (`--role conference`) and a stream node (`--role stream`) sharing a node
 * secret. A host meets on the conference node in Chromium (red camera,
 * 440 Hz microphone) and goes on air; the Program is pushed to the stream
 * node, where a viewer without an account finds it in the directory and
 * watches it (LL-HLS: red and 440 Hz; then WebRTC), ffprobe reads its HLS,
 * and the recording is listed when the broadcast ends; the host lists and
 * deletes it through the conference node. The conference node
 * sends viewers on to the stream node; the stream node serves no meetings
 * and refuses pushes without the secret. When the conference node dies
 * mid-broadcast, the stream node ends the broadcast by itself.
 */

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { after, before, test } from "node:test";

import { DESKTOP, collectErrors, launchViewerBrowser } from "./browser.mjs";
import { colourName, launchWithFakeDevices, makeFakeMedia, pollUntil } from "./conference-media.mjs";
import { startServer } from "./server.mjs";
import { stageState, toneInVideo, watchVideoColour } from "./watch-page.mjs";

const run = promisify(execFile);
const SECRET = "split-nodes-test-secret";
const HOST = { username: "hana", password: "hana-secret-1", display_name: "Hana Host" };
const TITLE = "Pushed to the stream node";
const TONE = 440;

/** @type {import("./server.mjs").RunningServer} */
let stream;
/** @type {import("./server.mjs").RunningServer} */
let conference;
/** @type {Awaited<ReturnType<typeof makeFakeMedia>>} */
let media;
/** @type {import("playwright-core").Browser} */
let hostBrowser;
/** @type {import("playwright-core").Browser} */
let viewerBrowser;

before(async () => {
  [stream, media] = await Promise.all([
    startServer({ args: ["--role", "stream", "--node-secret", SECRET] }),
    makeFakeMedia(["red"], [TONE]),
  ]);
  conference = await startServer({ args: ["--role", "conference", "--stream-node", stream.baseUrl, "--node-secret", SECRET] });
  [hostBrowser, viewerBrowser] = await Promise.all([
    launchWithFakeDevices({ video: media.video("red"), audio: media.audio(TONE) }),
    launchViewerBrowser(),
  ]);
});

after(async () => {
  await Promise.all([hostBrowser?.close(), viewerBrowser?.close()]);
  await conference?.stop();
  await stream?.stop();
  await media?.remove();
});

/**
 * @param {string} token
 * @param {string} roomId
 * @param {object} body
 */
async function setBroadcast(token, roomId, body) {
  const response = await fetch(`${conference.baseUrl}/api/v1/rooms/${encodeURIComponent(roomId)}/broadcast`, {
    method: "PUT",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  assert.equal(response.status, 200, text);
  return JSON.parse(text);
}

/** The stream node's directory: room ids on air. */
async function onAirAtStream() {
  const response = await fetch(`${stream.baseUrl}/api/v1/live`);
  assert.equal(response.status, 200);
  const { broadcasts } = await response.json();
  return broadcasts.map((/** @type {{room_id: string}} */ b) => b.room_id);
}

/**
 * The host registers on the conference node and joins their room's
 * conference with camera and microphone.
 * @param {typeof HOST} user
 */
async function hostJoins(user) {
  const context = await hostBrowser.newContext({ baseURL: conference.baseUrl, viewport: DESKTOP });
  context.setDefaultTimeout(15_000);
  const registered = await context.request.post("/api/v1/auth/register", { data: user });
  assert.equal(registered.status(), 201, await registered.text());
  const { token, room } = await registered.json();
  const page = await context.newPage();
  const errors = collectErrors(page, "host");
  await page.goto(`/rooms/${encodeURIComponent(room.id)}`);
  await page.getByRole("button", { name: "Join conference", exact: true }).click();
  await page.waitForFunction(() => document.documentElement.dataset.conferenceState === "connected", null, { timeout: 30_000 });
  return { context, page, errors, token, roomId: /** @type {string} */ (room.id) };
}

test("a broadcast from the conference node is watched from the stream node", { timeout: 240_000 }, async (t) => {
  const host = await hostJoins(HOST);
  const viewerContext = await viewerBrowser.newContext({ baseURL: stream.baseUrl, viewport: DESKTOP });
  viewerContext.setDefaultTimeout(15_000);
  try {
    const onAir = await setBroadcast(host.token, host.roomId, { on: true, title: TITLE, description: "Red and 440 Hz." });
    assert.equal(onAir.on, true);
    assert.equal(onAir.watch_page, `${stream.baseUrl}/watch/${host.roomId}`, "the watch page is on the stream node");
    assert.deepEqual(await onAirAtStream(), [host.roomId], "the stream node's directory lists it");
    await host.page.getByText(/on air/i).first().waitFor();

    // Viewers who come to the conference node are sent to the stream node.
    for (const viewerPath of [`/watch/${host.roomId}`, `/hls/${host.roomId}/index.m3u8`, "/api/v1/live"]) {
      const response = await fetch(`${conference.baseUrl}${viewerPath}`, { redirect: "manual" });
      assert.equal(response.status, 307, viewerPath);
      assert.equal(response.headers.get("location"), `${stream.baseUrl}${viewerPath}`);
    }

    // A viewer with no account watches on the stream node: LL-HLS first.
    const viewer = await viewerContext.newPage();
    const viewerErrors = collectErrors(viewer, "viewer");
    await viewer.goto(`/watch/${host.roomId}`);
    await viewer.getByRole("heading", { name: TITLE, level: 1 }).waitFor();
    const playing = await pollUntil(
      () => stageState(viewer),
      (s) => s !== null && s.state === "playing" && s.currentTime > 0,
      { timeout: 60_000, what: "the watch page to play" },
    );
    assert.equal(playing?.engine, "hls.js");
    const colour = await pollUntil(() => watchVideoColour(viewer), (c) => colourName(c) === "red", { what: "a red picture" });
    t.diagnostic(`LL-HLS picture ${JSON.stringify(colour)}`);
    const tone = await pollUntil(
      () => toneInVideo(viewer, TONE, 2000),
      (l) => l.aboveFloorDb >= 20 && Math.abs(l.peakHz - TONE) <= 15,
      { timeout: 30_000, interval: 0, what: `a ${TONE} Hz tone in the sound` },
    );
    t.diagnostic(`LL-HLS sound: strongest at ${tone.peakHz} Hz, ${tone.aboveFloorDb} dB above the floor`);

    // ffprobe reads the stream node's HLS: H.264 video and Opus audio.
    const { stdout } = await run("ffprobe", ["-v", "error", "-show_entries", "stream=codec_name", "-of", "json", `${stream.baseUrl}/hls/${host.roomId}/index.m3u8`], { timeout: 60_000 });
    const codecs = JSON.parse(stdout).streams.map((/** @type {{codec_name: string}} */ s) => s.codec_name).sort();
    assert.deepEqual(codecs, ["h264", "opus"]);

    // Low latency over WebRTC, from the stream node too. (Chromium offers
    // a loopback candidate only to a page that has had media permission.)
    await viewer.evaluate(async () => {
      const media = await navigator.mediaDevices.getUserMedia({ audio: true });
      for (const track of media.getTracks()) track.stop();
    });
    await viewer.getByRole("button", { name: "Low latency (WebRTC)" }).click();
    await pollUntil(
      () => stageState(viewer),
      (s) => s !== null && s.engine === "webrtc" && s.state === "playing" && s.currentTime > 0,
      { timeout: 30_000, what: "the WebRTC player to play" },
    );
    const webrtcColour = await pollUntil(() => watchVideoColour(viewer), (c) => colourName(c) === "red", { what: "a red picture over WebRTC" });
    t.diagnostic(`WebRTC picture ${JSON.stringify(webrtcColour)}`);

    // Off air on the conference node: off air on the stream node, whose
    // recording of it is then listed for replay.
    await setBroadcast(host.token, host.roomId, { on: false });
    assert.deepEqual(await onAirAtStream(), []);
    const recording = await pollUntil(
      async () => {
        const response = await fetch(`${stream.baseUrl}/api/v1/recordings`);
        const { recordings } = await response.json();
        return recordings.find((/** @type {{title: string}} */ r) => r.title === TITLE) ?? null;
      },
      (r) => r !== null,
      { timeout: 30_000, what: "the recording to be listed" },
    );
    t.diagnostic(`recording: ${JSON.stringify(recording)}`);

    // The room's members see it on the conference node (which asks the
    // stream node); a stranger may not delete it, the host may.
    const auth = { Authorization: `Bearer ${host.token}` };
    const listed = await fetch(`${conference.baseUrl}/api/v1/rooms/${host.roomId}/recordings`, { headers: auth });
    assert.equal(listed.status, 200);
    assert.deepEqual((await listed.json()).recordings.map((/** @type {{id: string}} */ r) => r.id), [recording.id]);
    const stranger = await fetch(`${conference.baseUrl}/api/v1/auth/register`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: "stranger", password: "stranger-secret-1", display_name: "Stranger" }),
    });
    const { token: strangerToken } = await stranger.json();
    const refused = await fetch(`${conference.baseUrl}/api/v1/recordings/${recording.id}`, { method: "DELETE", headers: { Authorization: `Bearer ${strangerToken}` } });
    assert.ok([403, 404].includes(refused.status), `a stranger's delete: ${refused.status}`);
    const deleted = await fetch(`${conference.baseUrl}/api/v1/recordings/${recording.id}`, { method: "DELETE", headers: auth });
    assert.equal(deleted.status, 204, await deleted.text());
    assert.equal((await fetch(`${stream.baseUrl}/api/v1/recordings/${recording.id}`)).status, 404, "gone from the stream node");
    assert.deepEqual(viewerErrors, []);
    assert.deepEqual(host.errors, []);
  } finally {
    await Promise.all([host.context.close(), viewerContext.close()]);
  }
});

test("the stream node refuses pushes without the secret and serves no meetings", async () => {
  const offer = "v=0\r\n";
  for (const authorization of [undefined, "Bearer wrong-secret-of-enough-length"]) {
    /** @type {Record<string, string>} */
    const headers = { "Content-Type": "application/sdp" };
    if (authorization) headers.Authorization = authorization;
    const response = await fetch(`${stream.baseUrl}/api/v1/nodes/programs/someroom?title=x&room_title=y&host=hana&host_name=H`, {
      method: "POST",
      headers,
      body: offer,
    });
    assert.equal(response.status, 401, String(authorization));
    assert.equal((await response.json()).error.code, "unauthorized");
  }
  const garbage = await fetch(`${stream.baseUrl}/api/v1/nodes/programs/someroom?title=x&room_title=y&host=hana&host_name=H`, {
    method: "POST",
    headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${SECRET}` },
    body: "not an offer",
  });
  assert.equal(garbage.status, 400);
  assert.deepEqual(await onAirAtStream(), [], "nothing went on air");
  // No accounts here: nobody is logged in, and meetings are elsewhere.
  assert.equal((await fetch(`${stream.baseUrl}/api/v1/me`)).status, 401);
  const login = await fetch(`${stream.baseUrl}/api/v1/auth/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: HOST.username, password: HOST.password }),
  });
  assert.equal(login.status, 404);
  assert.equal((await login.json()).error.code, "not_on_this_node");
  const pushToConference = await fetch(`${conference.baseUrl}/api/v1/nodes/programs/someroom`, {
    method: "POST",
    headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${SECRET}` },
    body: offer,
  });
  assert.equal(pushToConference.status, 404, "a conference node takes no pushes");
});

test("when the stream node cannot record, the host on the conference node is told", { timeout: 120_000 }, async (t) => {
  // The stream node's recordings folder becomes unusable: a file stands where it was.
  const folder = path.join(stream.dataDir, "recordings");
  await rm(folder, { recursive: true, force: true });
  await writeFile(folder, "not a folder");
  const host = await hostJoins({ username: "rita", password: "rita-secret-1", display_name: "Rita" });
  try {
    // The conference node's event stream, as the page's own one receives it.
    await host.page.evaluate(() => {
      const seen = /** @type {string[]} */ ([]);
      Object.assign(window, { recordingErrors: seen });
      new EventSource("/api/v1/events").addEventListener("recording_error", (e) => seen.push(e.data));
    });
    await setBroadcast(host.token, host.roomId, { on: true, title: "Not recorded" });
    assert.deepEqual(await onAirAtStream(), [host.roomId], "the broadcast goes on regardless");
    const events = await pollUntil(
      () => host.page.evaluate(() => /** @type {string[]} */ (Reflect.get(window, "recordingErrors"))),
      (e) => e.length > 0,
      { timeout: 30_000, what: "a recording_error event from the conference node" },
    );
    const event = JSON.parse(events[0]);
    assert.equal(event.room_id, host.roomId);
    assert.match(event.message, /cannot be written/);
    const notice = host.page.getByText(/recording cannot be written/i).first();
    await notice.waitFor({ timeout: 30_000 });
    t.diagnostic(`the host's page says: ${await notice.textContent()}`);
    assert.deepEqual(await onAirAtStream(), [host.roomId], "still live");
    await setBroadcast(host.token, host.roomId, { on: false });
    assert.deepEqual(host.errors, []);
  } finally {
    await host.context.close();
    await rm(folder, { force: true });
    await mkdir(folder, { recursive: true });
  }
});

test("when the conference node dies mid-broadcast, the stream node ends the broadcast", { timeout: 120_000 }, async (t) => {
  const host = await hostJoins({ username: "kai", password: "kai-secret-1", display_name: "Kai" });
  try {
    await setBroadcast(host.token, host.roomId, { on: true, title: "About to vanish" });
    assert.deepEqual(await onAirAtStream(), [host.roomId]);
    const killed = Date.now();
    await conference.kill();
    await pollUntil(onAirAtStream, (rooms) => rooms.length === 0, { timeout: 90_000, interval: 1000, what: "the stream node to end it" });
    t.diagnostic(`ended ${Math.round((Date.now() - killed) / 1000)} s after the conference node died`);
  } finally {
    await host.context.close().catch(() => {});
  }
});
