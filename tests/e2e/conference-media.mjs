// @ts-check
/**
 * Camera and microphone for conference tests: solid-colour videos and sine
 * tones made with ffmpeg, one Chromium process per participant fed with
 * them (Chromium's fake devices are per process), and probes that tell
 * from a page what it receives: the main video's average colour and the
 * energy of given frequencies in the room's audio.
 */

import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { chromium } from "playwright-core";

import { CHROMIUM_ARGS, CHROMIUM_PATH } from "./browser.mjs";

const run = promisify(execFile);

/**
 * @typedef {object} FakeDevices
 * @property {string} video a .y4m file
 * @property {string} audio a .wav file
 */

/**
 * Makes a folder with `<colour>.y4m` (320×240, 15 fps) and `tone<hz>.wav`
 * (48 kHz mono) for each requested colour and frequency.
 * @param {string[]} colours ffmpeg colour names
 * @param {number[]} tones frequencies in Hz
 * @returns {Promise<{dir: string, video: (colour: string) => string, audio: (hz: number) => string, remove: () => Promise<void>}>}
 */
export async function makeFakeMedia(colours, tones) {
  const dir = await mkdtemp(path.join(tmpdir(), "confcast-e2e-media-"));
  const video = (/** @type {string} */ colour) => path.join(dir, `${colour}.y4m`);
  const audio = (/** @type {number} */ hz) => path.join(dir, `tone${hz}.wav`);
  const jobs = [
    ...colours.map((colour) =>
      run("ffmpeg", ["-loglevel", "error", "-y", "-f", "lavfi", "-i", `color=c=${colour}:s=320x240:r=15`, "-t", "2", "-pix_fmt", "yuv420p", video(colour)]),
    ),
    ...tones.map((hz) =>
      run("ffmpeg", ["-loglevel", "error", "-y", "-f", "lavfi", "-i", `sine=frequency=${hz}:sample_rate=48000`, "-t", "5", "-ac", "1", audio(hz)]),
    ),
  ];
  await Promise.all(jobs);
  return { dir, video, audio, remove: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * A Chromium whose camera shows `devices.video` and whose microphone plays
 * `devices.audio` (both looped), with permission prompts answered yes and
 * sound allowed to play without a click.
 * @param {FakeDevices} devices
 * @param {string[]} [extraArgs] more Chromium flags
 * @returns {Promise<import("playwright-core").Browser>}
 */
export function launchWithFakeDevices(devices, extraArgs = []) {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      ...CHROMIUM_ARGS,
      "--use-fake-ui-for-media-stream",
      "--use-fake-device-for-media-stream",
      `--use-file-for-fake-video-capture=${devices.video}`,
      `--use-file-for-fake-audio-capture=${devices.audio}`,
      "--allow-loopback-in-peer-connection",
      "--autoplay-policy=no-user-gesture-required",
      ...extraArgs,
    ],
  });
}

/**
 * The average colour of the current frame of the video `selector` names,
 * or null while it has no frame.
 * @param {import("playwright-core").Page} page
 * @param {string} selector
 * @returns {Promise<{r: number, g: number, b: number} | null>}
 */
export function videoColour(page, selector) {
  return page.evaluate((selector) => {
    const video = document.querySelector(selector);
    if (!(video instanceof HTMLVideoElement) || video.readyState < 2 || video.videoWidth === 0) return null;
    const canvas = document.createElement("canvas");
    canvas.width = 32;
    canvas.height = 24;
    const context = canvas.getContext("2d", { willReadFrequently: true });
    if (!context) return null;
    context.drawImage(video, 0, 0, canvas.width, canvas.height);
    const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
    let r = 0;
    let g = 0;
    let b = 0;
    const pixels = data.length / 4;
    for (let i = 0; i < data.length; i += 4) {
      r += data[i];
      g += data[i + 1];
      b += data[i + 2];
    }
    return { r: Math.round(r / pixels), g: Math.round(g / pixels), b: Math.round(b / pixels) };
  }, selector);
}

/**
 * The average colour of the conference's main video, or null while it has
 * no frame.
 * @param {import("playwright-core").Page} page
 */
export function mainVideoColour(page) {
  return videoColour(page, "video.main-video");
}

/**
 * "red", "green" or "blue" when one channel clearly dominates, else null.
 * (ffmpeg's "green" is #008000, so the bar is moderate.)
 * @param {{r: number, g: number, b: number} | null} colour
 * @returns {string | null}
 */
export function colourName(colour) {
  if (!colour) return null;
  const channels = /** @type {const} */ ([
    ["red", colour.r],
    ["green", colour.g],
    ["blue", colour.b],
  ]);
  const sorted = [...channels].sort((a, b) => b[1] - a[1]);
  const [top, second] = sorted;
  return top[1] >= 70 && top[1] - second[1] >= 50 ? top[0] : null;
}

/**
 * Polls `probe` until `accept` says yes; fails with the last value seen.
 * @template T
 * @param {() => Promise<T>} probe
 * @param {(value: T) => boolean} accept
 * @param {{timeout?: number, interval?: number, what?: string}} [options]
 * @returns {Promise<T>}
 */
export async function pollUntil(probe, accept, { timeout = 30_000, interval = 250, what = "condition" } = {}) {
  const deadline = Date.now() + timeout;
  /** @type {T | undefined} */
  let last;
  for (;;) {
    last = await probe();
    if (accept(last)) return last;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}; last seen: ${JSON.stringify(last)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

/**
 * Listens to the room's audio (the `<audio>` element's stream) for `ms`
 * milliseconds and returns, for each frequency, how far its strongest FFT
 * bin (±12 Hz) stands above the median level of 200–2000 Hz, in dB.
 * @param {import("playwright-core").Page} page
 * @param {number[]} frequencies
 * @param {number} [ms]
 * @returns {Promise<Record<string, number>>}
 */
export function toneLevels(page, frequencies, ms = 2000) {
  return page.evaluate(
    async ({ frequencies, ms }) => {
      const element = document.querySelector("audio.conference-audio");
      if (!(element instanceof HTMLAudioElement) || !(element.srcObject instanceof MediaStream)) {
        throw new Error("no conference audio element with a stream");
      }
      const context = new AudioContext({ sampleRate: 48000 });
      await context.resume();
      const source = context.createMediaStreamSource(element.srcObject);
      const analyser = context.createAnalyser();
      analyser.fftSize = 8192;
      analyser.smoothingTimeConstant = 0;
      source.connect(analyser);
      const frame = new Float32Array(analyser.frequencyBinCount);
      const power = new Float64Array(analyser.frequencyBinCount);
      let frames = 0;
      const end = performance.now() + ms;
      while (performance.now() < end) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        analyser.getFloatFrequencyData(frame);
        for (let i = 0; i < frame.length; i += 1) {
          if (Number.isFinite(frame[i])) power[i] += 10 ** (frame[i] / 10);
        }
        frames += 1;
      }
      const binHz = context.sampleRate / analyser.fftSize;
      source.disconnect();
      await context.close();
      const db = (/** @type {number} */ p) => 10 * Math.log10(p / Math.max(frames, 1) + 1e-20);
      const band = [];
      for (let i = Math.floor(200 / binHz); i <= Math.ceil(2000 / binHz); i += 1) band.push(power[i]);
      band.sort((a, b) => a - b);
      const floor = db(band[Math.floor(band.length / 2)]);
      /** @type {Record<string, number>} */
      const levels = {};
      for (const hz of frequencies) {
        let peak = 0;
        for (let i = Math.floor((hz - 12) / binHz); i <= Math.ceil((hz + 12) / binHz); i += 1) peak = Math.max(peak, power[i]);
        levels[hz] = Math.round(db(peak) - floor);
      }
      return levels;
    },
    { frequencies, ms },
  );
}
