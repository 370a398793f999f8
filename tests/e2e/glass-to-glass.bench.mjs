// @ts-check
/**
 * Glass-to-glass latency of a broadcast, measured in the browsers: the
 * host's camera is a canvas that paints the wall clock (Date.now(), in
 * milliseconds) as 32 black or white blocks, 24 bits of time and an 8-bit
 * check, 30 times a second. The host joins their room's conference in
 * Chromium and goes on air; a viewer in another Chromium opens the watch
 * page (hls.js with the product's settings) and, for every frame the video
 * element presents (requestVideoFrameCallback), reads the blocks back and
 * subtracts the painted time from its own Date.now(). Both browsers run on
 * this machine, so they share one clock. What is measured: painting ->
 * capture -> WebRTC encode -> server -> LL-HLS packaging -> HTTP -> hls.js
 * -> decode -> presentation, everything but the screen's own refresh.
 *
 * GLASS_MODE=webrtc measures the watch page's low-latency mode instead
 * (`?mode=webrtc`: WHEP, the Program forwarded over WebRTC, no packaging):
 * the viewer opens the page, picks "Low latency (WebRTC)", and the same
 * reading is done on the frames that player presents. Inside a network
 * namespace with loopback only, Chromium gathers a loopback candidate only
 * with --allow-loopback-in-peer-connection and for a page that has had media
 * permission, so the viewer's page opens and closes a fake microphone first
 * (as in viewer.test.mjs).
 *
 * Not a test (no pass or fail, no timed assertions): a measurement printed
 * for docs/BENCHMARKS.md. Run it through scripts/bench-glass-to-glass.sh.
 *
 * Options (environment): GLASS_SECONDS (measured, default 30),
 * GLASS_WARMUP (seconds of playback before measuring, default 10),
 * GLASS_MODE (`hls`, the default, or `webrtc`).
 */

import { chromium } from "playwright-core";

import { CHROMIUM_ARGS, CHROMIUM_PATH, DESKTOP } from "./browser.mjs";
import { launchWithFakeDevices, makeFakeMedia, pollUntil } from "./conference-media.mjs";
import { startServer } from "./server.mjs";

const SECONDS = Number(process.env.GLASS_SECONDS || 30);
const WARMUP = Number(process.env.GLASS_WARMUP || 10);
const MODE = process.env.GLASS_MODE || "hls";
if (MODE !== "hls" && MODE !== "webrtc") throw new Error(`GLASS_MODE must be hls or webrtc, not ${MODE}`);

process.env.CONFCAST_MEDIA_PORT = "0";

/**
 * Replaces the camera track getUserMedia returns with a canvas painting the
 * clock (runs in the host's page before its scripts).
 */
function paintClockCamera() {
  const original = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    const stream = await original(constraints);
    if (!constraints || !constraints.video) return stream;
    const canvas = document.createElement("canvas");
    canvas.width = 320;
    canvas.height = 240;
    const context = canvas.getContext("2d");
    if (!context) return stream;
    const paint = () => {
      const now = Date.now() % 2 ** 24;
      const bytes = [now & 0xff, (now >> 8) & 0xff, (now >> 16) & 0xff];
      const check = (bytes[0] + bytes[1] + bytes[2] + 0x5a) & 0xff;
      const bits = [...bytes, check].flatMap((byte) => Array.from({ length: 8 }, (_, i) => (byte >> i) & 1));
      bits.forEach((bit, i) => {
        context.fillStyle = bit ? "#fff" : "#000";
        context.fillRect((i % 8) * 40, Math.floor(i / 8) * 60, 40, 60);
      });
    };
    paint();
    setInterval(paint, 1000 / 30);
    const painted = canvas.captureStream(30).getVideoTracks()[0];
    for (const track of stream.getVideoTracks()) {
      stream.removeTrack(track);
      track.stop();
    }
    stream.addTrack(painted);
    return stream;
  };
}

const [server, media] = await Promise.all([startServer(), makeFakeMedia(["black"], [440])]);
const hostBrowser = await launchWithFakeDevices({ video: media.video("black"), audio: media.audio(440) });
const viewerArgs = [...CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"];
if (MODE === "webrtc") {
  // Fake devices only to grant the page media permission once (see above); nothing captures.
  viewerArgs.push("--allow-loopback-in-peer-connection", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream");
}
const viewerBrowser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: viewerArgs });
try {
  const hostContext = await hostBrowser.newContext({ baseURL: server.baseUrl, viewport: DESKTOP });
  await hostContext.addInitScript(paintClockCamera);
  const host = await hostContext.newPage();
  const registered = await hostContext.request.post("/api/v1/auth/register", {
    data: { username: "clock", password: "clock-secret-1", display_name: "Clock" },
  });
  const { token, room } = await registered.json();
  await host.goto(`/rooms/${encodeURIComponent(room.id)}`);
  await host.getByRole("button", { name: "Join conference", exact: true }).click();
  await host.waitForFunction(() => document.documentElement.dataset.conferenceState === "connected", null, { timeout: 30_000 });
  const onAir = await fetch(`${server.baseUrl}/api/v1/rooms/${encodeURIComponent(room.id)}/broadcast`, {
    method: "PUT",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ on: true, title: "Clock" }),
  });
  if (onAir.status !== 200) throw new Error(`going on air answered ${onAir.status}`);

  const viewerContext = await viewerBrowser.newContext({ baseURL: server.baseUrl, viewport: DESKTOP });
  const viewer = await viewerContext.newPage();
  /** @type {string[]} */
  const hlsReports = [];
  viewer.on("console", (message) => {
    if (message.text().startsWith("hls.js")) hlsReports.push(message.text());
  });
  await viewer.goto(`/watch/${encodeURIComponent(room.id)}`);
  await pollUntil(
    () => viewer.evaluate(() => document.querySelector("video.watch-video") instanceof HTMLVideoElement && /** @type {HTMLVideoElement} */ (document.querySelector("video.watch-video")).currentTime > 0),
    (playing) => playing,
    { timeout: 45_000, what: "the watch page to play" },
  );
  if (MODE === "webrtc") {
    await viewer.evaluate(async () => {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      for (const track of stream.getTracks()) track.stop();
    });
    await viewer.getByRole("button", { name: "Low latency (WebRTC)" }).click();
    await pollUntil(
      () =>
        viewer.evaluate(() => {
          const stage = document.querySelector(".watch-stage");
          const video = document.querySelector("video.watch-video");
          return stage instanceof HTMLElement && video instanceof HTMLVideoElement && stage.dataset.engine === "webrtc" && stage.dataset.state === "playing" && video.currentTime > 0;
        }),
      (playing) => playing,
      { timeout: 30_000, what: "the WebRTC player to play" },
    );
    if (!/[?&]mode=webrtc\b/.test(viewer.url())) throw new Error(`the watch page's address does not say mode=webrtc: ${viewer.url()}`);
  }
  await new Promise((resolve) => setTimeout(resolve, WARMUP * 1000));

  const result = await viewer.evaluate(async (seconds) => {
    const video = /** @type {HTMLVideoElement} */ (document.querySelector("video.watch-video"));
    const stage = /** @type {HTMLElement} */ (document.querySelector(".watch-stage"));
    const canvas = document.createElement("canvas");
    canvas.width = 320;
    canvas.height = 240;
    const context = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d", { willReadFrequently: true }));
    /** @type {number[]} */
    const latencies = [];
    /** @type {number[]} */
    const playerLatencies = [];
    let unreadable = 0;
    let frames = 0;
    const startTime = video.currentTime;
    /** @returns {number | null} the painted time, or null if the check fails */
    const read = () => {
      context.drawImage(video, 0, 0, canvas.width, canvas.height);
      const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
      /** @type {number[]} */
      const bits = [];
      for (let i = 0; i < 32; i += 1) {
        const x0 = (i % 8) * 40 + 12;
        const y0 = Math.floor(i / 8) * 60 + 18;
        let sum = 0;
        let count = 0;
        for (let y = y0; y < y0 + 24; y += 2) {
          for (let x = x0; x < x0 + 16; x += 2) {
            const p = (y * canvas.width + x) * 4;
            sum += data[p] + data[p + 1] + data[p + 2];
            count += 3;
          }
        }
        bits.push(sum / count > 128 ? 1 : 0);
      }
      const bytes = [0, 1, 2, 3].map((b) => bits.slice(b * 8, b * 8 + 8).reduce((acc, bit, i) => acc | (bit << i), 0));
      if (((bytes[0] + bytes[1] + bytes[2] + 0x5a) & 0xff) !== bytes[3]) return null;
      return bytes[0] | (bytes[1] << 8) | (bytes[2] << 16);
    };
    await new Promise((resolve) => {
      const end = performance.now() + seconds * 1000;
      /** @type {VideoFrameRequestCallback} */
      const onFrame = () => {
        const now = Date.now();
        frames += 1;
        const painted = read();
        if (painted === null) unreadable += 1;
        else latencies.push((((now % 2 ** 24) - painted + 2 ** 24) % 2 ** 24));
        const hlsLatency = Number(stage.dataset.latency);
        if (Number.isFinite(hlsLatency) && stage.dataset.latency !== "") playerLatencies.push(hlsLatency * 1000);
        if (performance.now() < end) video.requestVideoFrameCallback(onFrame);
        else resolve(undefined);
      };
      video.requestVideoFrameCallback(onFrame);
    });
    return { latencies, playerLatencies, unreadable, frames, played: video.currentTime - startTime, size: `${video.videoWidth}x${video.videoHeight}` };
  }, SECONDS);

  const sorted = [...result.latencies].sort((a, b) => a - b);
  const q = (/** @type {number} */ p) => sorted[Math.min(sorted.length - 1, Math.round((sorted.length - 1) * p))];
  const player = [...result.playerLatencies].sort((a, b) => a - b);
  console.log(`glass-to-glass    ${MODE === "webrtc" ? "WebRTC (WHEP, ?mode=webrtc)" : "LL-HLS (hls.js)"}: ${sorted.length} frames read over ${SECONDS} s after ${WARMUP} s of playback (${result.frames} presented, ${result.unreadable} unreadable; video ${result.size}; ${result.played.toFixed(1)} s played)`);
  console.log(`latency           min ${q(0)} ms, p10 ${q(0.1)} ms, p50 ${q(0.5)} ms, p90 ${q(0.9)} ms, p99 ${q(0.99)} ms, max ${q(1)} ms`);
  if (player.length > 0) {
    const estimate = player[Math.floor(player.length / 2)].toFixed(0);
    if (MODE === "webrtc") console.log(`jitter buffer     (the player's getStats: average video jitterBufferDelay per frame) median ${estimate} ms`);
    else console.log(`hls.js latency    (its estimate of the distance to the live edge) median ${estimate} ms`);
  }
  if (MODE === "hls") console.log(`hls.js reports    ${hlsReports.length === 0 ? "none" : hlsReports.join(" | ")}`);
  const load = (await import("node:os")).loadavg().map((l) => l.toFixed(2)).join(" ");
  console.log(`machine           load average ${load}`);
} finally {
  await Promise.all([hostBrowser.close(), viewerBrowser.close()]);
  await server.stop();
  await media.remove();
}
