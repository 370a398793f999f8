// @ts-check
/**
 * WHIP ingest from a GStreamer encoder: Debian's `simple-whip-client`
 * (GStreamer's webrtcbin, libnice, OpenSSL DTLS with an RSA certificate)
 * publishes a red test pattern (H.264 from x264) and a 440 Hz tone (Opus)
 * into a room with an ingest key the host made. The host, in Chromium with a
 * blue camera, sees the encoder in the roster, watches it (red) and hears its
 * tone in the mix. When the encoder is stopped (SIGINT, as Ctrl-C) it ends
 * its WHIP session and leaves the roster.
 *
 * Debian 12's whip-client cannot load GStreamer's WebRTC plugin as packaged
 * (libsoup 2 and 3 in one process, see whip-client/gupnp-igd-stub.c); the
 * test builds that small stand-in with the C compiler and puts it first on
 * the encoder's LD_LIBRARY_PATH. Everything else is the packaged client.
 *
 * libnice ignores loopback, so, as in whip.test.mjs, the namespace gets a
 * veth pair with two test addresses (10.77.3.1 for the server's media,
 * 10.77.3.2) for the length of the test.
 */

import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";

import { DESKTOP, collectErrors } from "./browser.mjs";
import { launchWithFakeDevices, makeFakeMedia } from "./conference-media.mjs";
import { hostWithIngestKey, watchAndHearEncoder } from "./ingest.mjs";
import { ROOT, startServer } from "./server.mjs";
import { addVethPair } from "./veth.mjs";

const MEDIA_ADDRESS = "10.77.3.1";
const HOST = { username: "gina", password: "gina-secret-1", display_name: "Gina Host" };

const VIDEO_PIPELINE =
  "videotestsrc is-live=true pattern=red ! video/x-raw,width=320,height=240,framerate=15/1 ! videoconvert ! " +
  "x264enc tune=zerolatency speed-preset=ultrafast bitrate=300 key-int-max=15 ! " +
  "rtph264pay config-interval=-1 pt=96 ! application/x-rtp,media=video,encoding-name=H264,payload=96";
const AUDIO_PIPELINE =
  "audiotestsrc is-live=true wave=sine freq=440 volume=0.3 ! audioconvert ! audioresample ! opusenc ! " +
  "rtpopuspay pt=111 ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111";

/** @type {import("./server.mjs").RunningServer} */
let server;
/** @type {Awaited<ReturnType<typeof makeFakeMedia>>} */
let media;
/** @type {import("playwright-core").Browser} */
let browser;
/** Folder holding the libgupnp-igd stand-in. */
let stubDir = "";

/** @type {{ remove: () => void } | undefined} */
let veth;

before(async () => {
  stubDir = mkdtempSync(path.join(os.tmpdir(), "confcast-whip-client-"));
  execFileSync("cc", [
    "-shared", "-fPIC", "-Wl,-soname,libgupnp-igd-1.0.so.4",
    "-o", path.join(stubDir, "libgupnp-igd-1.0.so.4"),
    path.join(ROOT, "tests", "e2e", "whip-client", "gupnp-igd-stub.c"),
  ]);
  veth = addVethPair("cfg", MEDIA_ADDRESS, "10.77.3.2");
  [server, media] = await Promise.all([
    startServer({ host: "0.0.0.0", args: ["--public-ip", MEDIA_ADDRESS] }),
    makeFakeMedia(["blue"], [660]),
  ]);
  browser = await launchWithFakeDevices({ video: media.video("blue"), audio: media.audio(660) });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await media?.remove();
  veth?.remove();
  if (stubDir) rmSync(stubDir, { recursive: true, force: true });
});

test("simple-whip-client (GStreamer) publishes over WHIP and the host watches and hears it", { timeout: 120_000 }, async (t) => {
  const context = await browser.newContext({ baseURL: server.baseUrl, viewport: DESKTOP });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  const errors = collectErrors(page, "host");
  /** @type {import("node:child_process").ChildProcess | null} */
  let encoder = null;
  let output = "";
  try {
    const key = await hostWithIngestKey(context, page, HOST, "GStreamer studio");

    // The server is reached on the veth address: that is where libnice looks.
    const whipUrl = `http://${MEDIA_ADDRESS}:${new URL(server.baseUrl).port}${key.whip_url}`;
    encoder = spawn("whip-client", ["-u", whipUrl, "-t", key.token, "-o", "-V", VIDEO_PIPELINE, "-A", AUDIO_PIPELINE], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, LD_LIBRARY_PATH: [stubDir, process.env.LD_LIBRARY_PATH].filter(Boolean).join(":") },
    });
    encoder.stdout?.on("data", (chunk) => (output += chunk));
    encoder.stderr?.on("data", (chunk) => (output += chunk));
    const exited = new Promise((resolve) => encoder?.on("exit", (code, signal) => resolve({ code, signal })));

    const row = await watchAndHearEncoder(t, page, "GStreamer studio", () => output);
    assert.match(output, /DTLS connected/);

    // Ctrl-C: the client ends its WHIP session (DELETE) and leaves the roster.
    encoder.kill("SIGINT");
    const result = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve("still running"), 15_000))]);
    t.diagnostic(`encoder exit: ${JSON.stringify(result)}`);
    await row.waitFor({ state: "detached", timeout: 15_000 }).catch((err) => {
      throw new Error(`the encoder stayed in the roster after SIGINT (${err}); encoder output:\n${output}`);
    });
    assert.deepEqual(errors, []);
  } finally {
    encoder?.kill("SIGKILL");
    await context.close();
  }
});
