// @ts-check
/**
 * Probes of the public watch page (/watch/{room}) for end-to-end tests:
 * what its player is doing, the colour of its picture, the tones in its
 * sound.
 */

import { videoColour } from "./conference-media.mjs";

/**
 * What the watch page's player is doing (data-* of the stage).
 * @param {import("playwright-core").Page} page
 */
export function stageState(page) {
  return page.evaluate(() => {
    const stage = document.querySelector(".watch-stage");
    const video = document.querySelector("video.watch-video");
    if (!(stage instanceof HTMLElement) || !(video instanceof HTMLVideoElement)) return null;
    return {
      state: stage.dataset.state ?? "",
      engine: stage.dataset.engine ?? "",
      latency: stage.dataset.latency ?? "",
      currentTime: video.currentTime,
      muted: video.muted,
      paused: video.paused,
    };
  });
}

/**
 * The average colour of the watch page's current frame, or null while it
 * has none.
 * @param {import("playwright-core").Page} page
 */
export function watchVideoColour(page) {
  return videoColour(page, "video.watch-video");
}

/**
 * Listens to the watch page's video element for `ms` milliseconds through
 * WebAudio (the element must not be muted; when it plays a MediaStream,
 * WebRTC's, the stream itself is listened to, as Chromium does not route
 * such an element through WebAudio) and returns where the strongest
 * FFT bin between 200 and 2000 Hz is, and how far the strongest bin within
 * ±12 Hz of `hz` stands above the median level of 200–2000 Hz, in dB.
 * @param {import("playwright-core").Page} page
 * @param {number} hz
 * @param {number} ms
 * @returns {Promise<{peakHz: number, aboveFloorDb: number, muted: boolean}>}
 */
export function toneInVideo(page, hz, ms) {
  return page.evaluate(
    async ({ hz, ms }) => {
      const video = document.querySelector("video.watch-video");
      if (!(video instanceof HTMLVideoElement)) throw new Error("no watch video");
      // An element can feed only one source node: make it once, keep it.
      /** @type {any} */
      const w = window;
      const stream = video.srcObject instanceof MediaStream ? video.srcObject : null;
      if (w.__toneProbe && w.__toneProbe.stream !== stream) {
        w.__toneProbe.source.disconnect();
        w.__toneProbe = null;
      }
      if (!w.__toneProbe) {
        const context = w.__toneContext ?? new AudioContext({ sampleRate: 48000 });
        w.__toneContext = context;
        // An element can feed only one element source node: keep it.
        w.__elementSource ??= stream ? null : context.createMediaElementSource(video);
        const source = stream ? context.createMediaStreamSource(stream) : w.__elementSource;
        const analyser = context.createAnalyser();
        analyser.fftSize = 8192;
        analyser.smoothingTimeConstant = 0;
        source.connect(analyser);
        if (!stream) analyser.connect(context.destination);
        w.__toneProbe = { context, analyser, source, stream };
      }
      /** @type {{context: AudioContext, analyser: AnalyserNode}} */
      const { context, analyser } = w.__toneProbe;
      await context.resume();
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
      const db = (/** @type {number} */ p) => 10 * Math.log10(p / Math.max(frames, 1) + 1e-20);
      const band = [];
      let peakBin = Math.floor(200 / binHz);
      for (let i = Math.floor(200 / binHz); i <= Math.ceil(2000 / binHz); i += 1) {
        band.push(power[i]);
        if (power[i] > power[peakBin]) peakBin = i;
      }
      band.sort((a, b) => a - b);
      const floor = db(band[Math.floor(band.length / 2)]);
      let peak = 0;
      for (let i = Math.floor((hz - 12) / binHz); i <= Math.ceil((hz + 12) / binHz); i += 1) peak = Math.max(peak, power[i]);
      return { peakHz: Math.round(peakBin * binHz), aboveFloorDb: Math.round(db(peak) - floor), muted: video.muted };
    },
    { hz, ms },
  );
}
