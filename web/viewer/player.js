// @ts-check
/**
 * Plays a room's LL-HLS channel in a `<video>`: with hls.js over Media
 * Source Extensions where the browser has them (`Hls.isSupported()`),
 * else with the browser's own HLS player (Safari on iOS). hls.js is loaded
 * only when a channel is played.
 *
 * Network and media errors are recovered the way hls.js recommends
 * (`startLoad`, `recoverMediaError`); when that does not help, or the
 * player cannot start, the state becomes `error` and the page offers a
 * retry. The end of the playlist (`#EXT-X-ENDLIST`) or a 404 for the
 * channel makes the state `ended`.
 */

import { autoplay } from "./autoplay.js";

/**
 * - `connecting`: loading the player or the first media (the message may
 *   say what it waits for)
 * - `playing`, `buffering` (waiting for media), `paused` (by the viewer,
 *   or the browser refused to start even muted)
 * - `ended`: the broadcast is over (the player has stopped)
 * - `error`: playback failed (the player has stopped); see the message
 * @typedef {"connecting" | "playing" | "buffering" | "paused" | "ended" | "error"} PlayerState
 */

/**
 * @typedef {object} PlayerHandlers
 * @property {(state: PlayerState, message?: string) => void} onState
 * @property {(muted: boolean) => void} [onMuted] the video was muted or unmuted
 *   (by the viewer, or because the browser blocks autoplay with sound)
 */

/** @typedef {typeof import("../vendor/hls/hls.light.min.mjs").default} HlsClass */
/** @typedef {import("../vendor/hls/hls.light.min.mjs").default} HlsInstance */
/** @typedef {import("../vendor/hls/hls.light.min.mjs").ErrorData} HlsErrorData */

const PART_TARGET_S = 0.2;

/**
 * Low-latency settings for hls.js (a new object for every player).
 *
 * - `liveSyncDuration` (seconds) rather than `liveSyncDurationCount`: the
 *   count is a multiple of EXT-X-TARGETDURATION, which confcast sets to the
 *   longest a segment may get when no keyframe comes (4 s), so 3 of them
 *   would put the player 12 s behind. Any explicit setting also overrides
 *   the playlist's PART-HOLD-BACK, so this is set to what the server
 *   advertises there: 3 part targets of 200 ms.
 * - `maxLiveSyncPlaybackRate`: a player that is behind its target (after a
 *   stall, or when it had to start from an earlier keyframe) catches up by
 *   playing up to 1.5 times as fast (pitch kept) while it has more than a
 *   second buffered; without it, hls.js never gets closer again.
 * - `liveMaxLatencyDuration`: a player that fell further behind than this
 *   (after stalls, or paused by the viewer) jumps back to the live point. It
 *   leaves room for hls.js's own backing off (+1 s per stall, up to one
 *   target duration).
 * - `backBufferLength`: the channel is watched live, so little played media
 *   is kept in memory.
 * - `enableWorker: false`: the page's CSP allows no `blob:` worker, and
 *   fMP4 is only passed through (no transmuxing), so the page's thread
 *   copes.
 * - `playlistLoadPolicy`: for its first seconds a broadcast's media
 *   playlist lists only the parts of its first, unfinished segment, which
 *   hls.js reports as an empty playlist (`levelEmptyError`) and retries; it
 *   retries here often enough, at short intervals, to wait for the first
 *   segment instead of failing. Other settings are hls.js's defaults.
 * @returns {Partial<import("../vendor/hls/hls.light.min.mjs").HlsConfig>}
 */
export function hlsConfig() {
  return {
    lowLatencyMode: true,
    enableWorker: false,
    liveSyncDuration: 3 * PART_TARGET_S,
    liveMaxLatencyDuration: 5,
    maxLiveSyncPlaybackRate: 1.5,
    backBufferLength: 10,
    playlistLoadPolicy: {
      default: {
        maxTimeToFirstByteMs: 10_000,
        maxLoadTimeMs: 20_000,
        timeoutRetry: { maxNumRetry: 2, retryDelayMs: 0, maxRetryDelayMs: 0 },
        errorRetry: { maxNumRetry: 10, retryDelayMs: 500, maxRetryDelayMs: 500, backoff: "linear" },
      },
    },
  };
}

/** Fatal network errors recovered with `startLoad` before giving up. */
const NETWORK_RECOVERIES = 2;
/** Fatal media errors recovered with `recoverMediaError` before giving up. */
const MEDIA_RECOVERIES = 2;
/** Fresh starts (e.g. the channel was not ready yet) before giving up. */
const RESTARTS = 3;
const RESTART_DELAY_MS = 2000;
/** After the playlist ends, how long the rest of the buffer may still play. */
const DRAIN_LIMIT_MS = 10_000;

const HLS_MIME = "application/vnd.apple.mpegurl";

/**
 * @param {HlsErrorData} data
 * @returns {string}
 */
export function describeHlsError(data) {
  const status = data.response && data.response.code ? ` HTTP ${data.response.code}` : "";
  const reason = data.error?.message || data.reason || "";
  return `${data.fatal ? "fatal " : ""}${data.type}/${data.details}${status}${reason ? `: ${reason}` : ""}`;
}

export class LivePlayer {
  /**
   * @param {HTMLVideoElement} video
   * @param {PlayerHandlers} handlers
   */
  constructor(video, handlers) {
    this.video = video;
    this.handlers = handlers;
    /** @type {PlayerState} */
    this.state = "ended";
    this.url = "";
    /** Bumped by every start and stop, so late callbacks of an old start do nothing. */
    this.generation = 0;
    /** @type {HlsInstance | null} */
    this.hls = null;
    /** @type {AbortController | null} removes the current start's media listeners */
    this.listeners = null;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.timer = null;
    this.networkRecoveries = 0;
    this.mediaRecoveries = 0;
    this.restarts = 0;
    this.draining = false;
    /** Which engine plays: "hls.js", "native" or "" while stopped. */
    this.engine = "";
  }

  /**
   * Starts playing the channel at `url` (its multivariant playlist).
   * @param {string} url
   * @param {string} [waitingFor] what the `connecting` state says
   */
  async start(url, waitingFor = "") {
    this.stop();
    this.url = url;
    const generation = this.generation;
    this.setState("connecting", waitingFor);
    if ("MediaSource" in window || "ManagedMediaSource" in window) {
      /** @type {HlsClass} */
      let Hls;
      try {
        Hls = (await import("../vendor/hls/hls.light.min.mjs")).default;
      } catch (err) {
        if (generation !== this.generation) return;
        console.error("could not load hls.js", err);
        this.fail("The video player could not be loaded. Check your connection and try again.");
        return;
      }
      if (generation !== this.generation) return;
      if (Hls.isSupported()) {
        this.startHls(Hls, url);
        return;
      }
    }
    if (this.video.canPlayType(HLS_MIME) !== "") {
      this.startNative(url);
      return;
    }
    this.fail("This browser cannot play live video.");
  }

  /** Starts again from the channel's address (after an error). */
  retry() {
    this.restarts = 0;
    void this.start(this.url);
  }

  /** Stops playing and lets go of the stream. */
  stop() {
    this.generation += 1;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.listeners?.abort();
    this.listeners = null;
    this.hls?.destroy();
    this.hls = null;
    this.engine = "";
    this.draining = false;
    if (this.video.hasAttribute("src")) {
      this.video.removeAttribute("src");
      this.video.load();
    }
  }

  /** Unmutes (and starts playing if the browser had refused to). */
  unmute() {
    this.video.muted = false;
    if (this.video.paused && this.engine !== "") void this.video.play().catch(() => {});
  }

  /**
   * Seconds behind the live edge, or null when not known.
   * @returns {number | null}
   */
  latency() {
    if (this.hls) return this.hls.latency > 0 ? this.hls.latency : null;
    const { seekable, currentTime } = this.video;
    if (this.engine === "native" && seekable.length > 0) return Math.max(0, seekable.end(seekable.length - 1) - currentTime);
    return null;
  }

  /**
   * @param {PlayerState} state
   * @param {string} [message]
   */
  setState(state, message) {
    this.state = state;
    this.handlers.onState(state, message);
  }

  /** @param {string} message */
  fail(message) {
    this.stop();
    this.setState("error", message);
  }

  /** The broadcast is over. */
  finish() {
    this.stop();
    this.setState("ended");
  }

  /**
   * Starts afresh a little later, or gives up after a few tries.
   * @param {boolean} [patient] try again however often it takes
   */
  restartLater(patient = false) {
    if (!patient && this.restarts >= RESTARTS) {
      this.fail("The channel could not be reached. Check your connection and try again.");
      return;
    }
    if (!patient) this.restarts += 1;
    const url = this.url;
    const waitingFor = patient ? "Waiting for the picture…" : "Reconnecting…";
    this.stop();
    this.setState("connecting", waitingFor);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.start(url, waitingFor);
    }, RESTART_DELAY_MS);
  }

  /** The listeners every engine needs, removed by {@link stop}. */
  listen() {
    const controller = new AbortController();
    this.listeners = controller;
    const { signal } = controller;
    const video = this.video;
    video.addEventListener(
      "playing",
      () => {
        this.restarts = 0;
        this.setState("playing");
      },
      { signal },
    );
    video.addEventListener("waiting", () => this.setState("buffering"), { signal });
    video.addEventListener(
      "pause",
      () => {
        if (!video.ended && !this.draining) this.setState("paused");
      },
      { signal },
    );
    video.addEventListener("ended", () => this.finish(), { signal });
    video.addEventListener("volumechange", () => this.handlers.onMuted?.(video.muted), { signal });
    return signal;
  }

  /**
   * Plays with sound if the browser lets the page, else muted (the page
   * then shows its Unmute button).
   */
  async autoplay() {
    const generation = this.generation;
    await autoplay(this.video, () => generation === this.generation, () => this.setState("paused"));
  }

  /**
   * @param {HlsClass} Hls
   * @param {string} url
   */
  startHls(Hls, url) {
    const hls = new Hls(hlsConfig());
    this.hls = hls;
    this.engine = "hls.js";
    this.listen();
    const { Events } = Hls;
    hls.on(Events.MANIFEST_PARSED, () => void this.autoplay());
    hls.on(Events.LEVEL_UPDATED, (_event, data) => {
      if (!data.details.live) this.drain();
    });
    hls.on(Events.FRAG_BUFFERED, () => {
      this.networkRecoveries = 0;
      this.mediaRecoveries = 0;
    });
    hls.on(Events.ERROR, (_event, data) => this.onHlsError(Hls, hls, data));
    hls.loadSource(url);
    hls.attachMedia(this.video);
  }

  /** @param {string} url */
  startNative(url) {
    this.engine = "native";
    const signal = this.listen();
    const video = this.video;
    video.addEventListener(
      "error",
      () => {
        const error = video.error;
        console.warn("native HLS playback error", error?.code, error?.message);
        if (error && error.code === MediaError.MEDIA_ERR_NETWORK) this.restartLater();
        else this.fail("The video could not be played.");
      },
      { signal },
    );
    video.src = url;
    void this.autoplay();
  }

  /**
   * The playlist has ended: play out what is buffered, then stop.
   */
  drain() {
    if (this.draining) return;
    this.draining = true;
    const video = this.video;
    const { buffered, currentTime } = video;
    const left = buffered.length > 0 ? Math.max(0, buffered.end(buffered.length - 1) - currentTime) : 0;
    const wait = video.paused ? 0 : Math.min(DRAIN_LIMIT_MS, left * 1000 + 1000);
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.finish();
    }, wait);
  }

  /**
   * @param {HlsClass} Hls
   * @param {HlsInstance} hls
   * @param {HlsErrorData} data
   */
  onHlsError(Hls, hls, data) {
    if (hls !== this.hls) return;
    const text = describeHlsError(data);
    console.warn(`hls.js: ${text}`);
    if (!data.fatal) return;
    const { ErrorTypes, ErrorDetails } = Hls;
    const manifest = [ErrorDetails.MANIFEST_LOAD_ERROR, ErrorDetails.MANIFEST_LOAD_TIMEOUT, ErrorDetails.MANIFEST_PARSING_ERROR];
    if (manifest.includes(data.details)) {
      const status = data.response ? data.response.code : 0;
      // 404: the room is not on air (any more). 503: on air, but the
      // channel has no picture yet (the host's camera has not reached the
      // server): wait for it as long as it takes. Anything else: a few more
      // tries.
      if (status === 404) this.finish();
      else this.restartLater(status === 503);
      return;
    }
    if (data.type === ErrorTypes.NETWORK_ERROR) {
      if (data.details === ErrorDetails.LEVEL_LOAD_ERROR && data.response && data.response.code === 404) {
        // This broadcast is gone; the room's address tells whether another started.
        this.restartLater();
        return;
      }
      if (this.networkRecoveries < NETWORK_RECOVERIES) {
        this.networkRecoveries += 1;
        hls.startLoad();
        return;
      }
      this.restartLater();
      return;
    }
    if (data.type === ErrorTypes.MEDIA_ERROR && this.mediaRecoveries < MEDIA_RECOVERIES) {
      this.mediaRecoveries += 1;
      hls.recoverMediaError();
      return;
    }
    this.fail(`The video could not be played (${data.details}).`);
  }
}
