// @ts-check
/**
 * WHIP ingest with an independent WebRTC stack: aiortc (Python) publishes a
 * red picture and a 440 Hz tone into a room with an ingest key the host
 * made; the host, in Chromium with a blue camera, sees the encoder in the
 * roster, watches it (red), and hears its tone in the mix. When the encoder
 * ends its session it leaves the roster.
 *
 * aiortc's ICE never uses loopback, so this test gives the namespace a veth
 * pair with two test addresses (10.77.1.1 for the server's media, 10.77.1.2)
 * and removes it afterwards; it needs the network namespace the test command
 * makes (scripts/test.sh) and a Python with aiortc (CONFCAST_E2E_PYTHON, set
 * up by scripts/setup.sh).
 */

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { after, before, test } from "node:test";

import { DESKTOP, collectErrors } from "./browser.mjs";
import { launchWithFakeDevices, makeFakeMedia } from "./conference-media.mjs";
import { hostWithIngestKey, watchAndHearEncoder } from "./ingest.mjs";
import { ROOT, startServer } from "./server.mjs";
import { addVethPair } from "./veth.mjs";

const PYTHON = process.env.CONFCAST_E2E_PYTHON || path.join(ROOT, "target", "e2e-venv", "bin", "python");
const MEDIA_ADDRESS = "10.77.1.1";
const HOST = { username: "hana", password: "hana-secret-1", display_name: "Hana Host" };

/** @type {import("./server.mjs").RunningServer} */
let server;
/** @type {Awaited<ReturnType<typeof makeFakeMedia>>} */
let media;
/** @type {import("playwright-core").Browser} */
let browser;

/** @type {{ remove: () => void } | undefined} */
let veth;

before(async () => {
  veth = addVethPair("cfw", MEDIA_ADDRESS, "10.77.1.2");
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
});

test("an aiortc encoder publishes over WHIP and the host watches and hears it", { timeout: 120_000 }, async (t) => {
  const context = await browser.newContext({ baseURL: server.baseUrl, viewport: DESKTOP });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  const errors = collectErrors(page, "host");
  /** @type {import("node:child_process").ChildProcess | null} */
  let encoder = null;
  try {
    const key = await hostWithIngestKey(context, page, HOST, "Studio camera");

    let output = "";
    encoder = spawn(PYTHON, [path.join(ROOT, "tests", "e2e", "whip_publisher.py"), `${server.baseUrl}${key.whip_url}`, key.token, "20"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    encoder.stdout?.on("data", (chunk) => (output += chunk));
    encoder.stderr?.on("data", (chunk) => (output += chunk));
    const exited = new Promise((resolve) => encoder?.on("exit", (code) => resolve(code)));

    const row = await watchAndHearEncoder(t, page, "Studio camera", () => output);

    // The encoder ends its session (DELETE): it leaves the roster.
    const code = await exited;
    encoder = null;
    assert.equal(code, 0, `encoder output:\n${output}`);
    assert.match(output, /ended 204/);
    await row.waitFor({ state: "detached", timeout: 15_000 });
    assert.deepEqual(errors, []);
  } finally {
    encoder?.kill();
    await context.close();
  }
});
