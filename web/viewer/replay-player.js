// @ts-check
/**
 * Plays a finished recording (an HLS VOD playlist) in a `<video>`: with
 * hls.js over Media Source Extensions where the browser has them, else with
 * the browser's own HLS player (Safari on iOS). Seeking is the video
 * element's own (its controls, or `currentTime`).
 *
 * Unlike the live player there is no live edge to follow: hls.js runs with
 * its default buffering, and an error it cannot recover from stops playback
 * with a message.
 */

/** @typedef {typeof import("../vendor/hls/hls.light.min.mjs").default} HlsClass */
/** @typedef {import("../vendor/hls/hls.light.min.mjs").default} HlsInstance */

const HLS_MIME = "application/vnd.apple.mpegurl";
/** Fatal media errors recovered with `recoverMediaError` before giving up. */
const MEDIA_RECOVERIES = 2;

/**
 * @typedef {object} ReplayHandlers
 * @property {(state: "loading" | "ready" | "error", message?: string) => void} onState
 */

export class ReplayPlayer {
  /**
   * @param {HTMLVideoElement} video
   * @param {ReplayHandlers} handlers
   */
  constructor(video, handlers) {
    this.video = video;
    this.handlers = handlers;
    /** @type {HlsInstance | null} */
    this.hls = null;
    /** Which engine plays: "hls.js", "native" or "". */
    this.engine = "";
    this.stopped = false;
  }

  /** @param {string} url the recording's VOD playlist */
  async start(url) {
    this.handlers.onState("loading");
    const video = this.video;
    video.addEventListener("loadedmetadata", () => this.handlers.onState("ready"), { once: true });
    if ("MediaSource" in window || "ManagedMediaSource" in window) {
      /** @type {HlsClass} */
      let Hls;
      try {
        Hls = (await import("../vendor/hls/hls.light.min.mjs")).default;
      } catch (err) {
        console.error("could not load hls.js", err);
        this.handlers.onState("error", "The video player could not be loaded. Check your connection and try again.");
        return;
      }
      if (this.stopped) return;
      if (Hls.isSupported()) {
        // No worker: the page's CSP allows no blob: workers, and fMP4 is
        // only passed through.
        const hls = new Hls({ enableWorker: false });
        this.hls = hls;
        this.engine = "hls.js";
        let recoveries = 0;
        hls.on(Hls.Events.ERROR, (_event, data) => {
          console.warn(`hls.js: ${data.type}/${data.details}`);
          if (!data.fatal) return;
          if (data.type === Hls.ErrorTypes.MEDIA_ERROR && recoveries < MEDIA_RECOVERIES) {
            recoveries += 1;
            hls.recoverMediaError();
            return;
          }
          const gone = data.response && data.response.code === 404;
          this.stop();
          this.handlers.onState("error", gone ? "This recording is no longer available." : `The recording could not be played (${data.details}).`);
        });
        hls.loadSource(url);
        hls.attachMedia(video);
        return;
      }
    }
    if (video.canPlayType(HLS_MIME) !== "") {
      this.engine = "native";
      video.addEventListener("error", () => this.handlers.onState("error", "The recording could not be played."), { once: true });
      video.src = url;
      return;
    }
    this.handlers.onState("error", "This browser cannot play this video.");
  }

  stop() {
    this.stopped = true;
    this.hls?.destroy();
    this.hls = null;
    this.engine = "";
    if (this.video.hasAttribute("src")) {
      this.video.removeAttribute("src");
      this.video.load();
    }
  }
}
