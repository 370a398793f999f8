// @ts-check
/**
 * Plays a room's broadcast over WebRTC (WHEP): well under a second behind
 * live, where LL-HLS is a second or more. The page offers it as "low
 * latency"; it has the same interface and states as {@link LivePlayer}, so
 * the watch page swaps one for the other.
 *
 * The offer is sent complete (the server is ICE-lite with one address and
 * takes no trickled candidates), so the player waits for ICE gathering, at
 * most {@link GATHER_MS}. A 404 means the room is not on air (`ended`), a
 * 503 that the server has no room for another WebRTC viewer (`error`, with
 * a hint to use the standard stream). A connection that fails is tried
 * again a few times. Stopping DELETEs the session. A logged-in viewer's
 * connection may also use the TURN relays the server names.
 */

import { fetchIceServers } from "../conference/ice-servers.js";
import { session } from "../session.js";
import { autoplay } from "./autoplay.js";

/** @typedef {import("./player.js").PlayerState} PlayerState */
/** @typedef {import("./player.js").PlayerHandlers} PlayerHandlers */

const GATHER_MS = 2000;
const RESTARTS = 3;
const RESTART_DELAY_MS = 2000;

export class WhepPlayer {
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
    this.generation = 0;
    /** @type {RTCPeerConnection | null} */
    this.pc = null;
    /** The session's address, for the DELETE ("" while none). */
    this.session = "";
    /** @type {AbortController | null} */
    this.listeners = null;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.timer = null;
    /** @type {ReturnType<typeof setInterval> | null} */
    this.statsTimer = null;
    this.restarts = 0;
    /** Seconds of media the browser holds before playing it, from getStats. */
    this.delay = /** @type {number | null} */ (null);
    /** "webrtc" while playing, "" while stopped. */
    this.engine = "";
  }

  /**
   * Starts watching the broadcast whose WHEP endpoint is `url`.
   * @param {string} url
   * @param {string} [waitingFor]
   */
  async start(url, waitingFor = "") {
    this.stop();
    this.url = url;
    const generation = this.generation;
    this.setState("connecting", waitingFor);
    if (typeof RTCPeerConnection === "undefined") {
      this.fail("This browser cannot play low-latency video; switch to the standard stream.");
      return;
    }
    // TURN relays for logged-in viewers; anonymous ones reach the server
    // directly (UDP, or ICE-TCP when UDP is blocked).
    const iceServers = session() ? await fetchIceServers() : [];
    if (generation !== this.generation) return;
    const pc = new RTCPeerConnection({ iceServers });
    this.pc = pc;
    this.engine = "webrtc";
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addTransceiver("audio", { direction: "recvonly" });
    const stream = new MediaStream();
    pc.addEventListener("track", (event) => {
      stream.addTrack(event.track);
      if (this.video.srcObject !== stream) this.video.srcObject = stream;
    });
    pc.addEventListener("connectionstatechange", () => {
      if (generation !== this.generation) return;
      if (pc.connectionState === "failed") this.restartLater();
      if (pc.connectionState === "disconnected") this.setState("buffering");
    });
    this.listen();
    let response;
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc, GATHER_MS);
      if (generation !== this.generation) return;
      response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/sdp" },
        body: pc.localDescription?.sdp ?? "",
      });
    } catch (err) {
      if (generation !== this.generation) return;
      console.warn("WHEP offer failed", err);
      this.restartLater();
      return;
    }
    if (generation !== this.generation) return;
    if (response.status === 404) {
      this.finish();
      return;
    }
    if (response.status !== 201) {
      const why = await response.json().then((body) => body?.message ?? "", () => "");
      if (generation !== this.generation) return;
      this.fail(
        response.status === 503
          ? "Low-latency viewing is full right now; the standard stream still plays."
          : `The low-latency stream could not start${why ? `: ${why}` : "."}`,
      );
      return;
    }
    const location = response.headers.get("Location") ?? "";
    this.session = location ? new URL(location, new URL(url, window.location.href)).href : "";
    const answer = await response.text();
    if (generation !== this.generation) return;
    try {
      await pc.setRemoteDescription({ type: "answer", sdp: answer });
    } catch (err) {
      console.warn("WHEP answer refused", err);
      this.fail("The low-latency stream could not start.");
      return;
    }
    void this.autoplay();
    this.statsTimer = setInterval(() => void this.measure(), 1000);
  }

  retry() {
    this.restarts = 0;
    void this.start(this.url);
  }

  /** Ends the session and lets go of the connection. */
  stop() {
    this.generation += 1;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.statsTimer !== null) clearInterval(this.statsTimer);
    this.statsTimer = null;
    this.listeners?.abort();
    this.listeners = null;
    if (this.session) {
      // keepalive: the DELETE still goes out when the page is closing.
      void fetch(this.session, { method: "DELETE", keepalive: true }).catch(() => {});
      this.session = "";
    }
    this.pc?.close();
    this.pc = null;
    this.engine = "";
    this.delay = null;
    if (this.video.srcObject) {
      this.video.srcObject = null;
      this.video.load();
    }
  }

  unmute() {
    this.video.muted = false;
    if (this.video.paused && this.engine !== "") void this.video.play().catch(() => {});
  }

  /**
   * Seconds the browser buffers before playing (its jitter buffer): the part
   * of the delay a viewer can see from here; null when not known.
   * @returns {number | null}
   */
  latency() {
    return this.delay;
  }

  async measure() {
    const pc = this.pc;
    if (!pc) return;
    const stats = await pc.getStats();
    stats.forEach((report) => {
      if (report.type === "inbound-rtp" && report.kind === "video" && report.jitterBufferEmittedCount > 0) {
        this.delay = report.jitterBufferDelay / report.jitterBufferEmittedCount;
      }
    });
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

  finish() {
    this.stop();
    this.setState("ended");
  }

  restartLater() {
    if (this.restarts >= RESTARTS) {
      this.fail("The low-latency stream could not be reached. Check your connection and try again.");
      return;
    }
    this.restarts += 1;
    const url = this.url;
    this.stop();
    this.setState("connecting", "Reconnecting…");
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.start(url, "Reconnecting…");
    }, RESTART_DELAY_MS);
  }

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
    video.addEventListener("pause", () => this.setState("paused"), { signal });
    video.addEventListener("volumechange", () => this.handlers.onMuted?.(video.muted), { signal });
  }

  /** Plays with sound if the browser lets the page, else muted. */
  async autoplay() {
    const generation = this.generation;
    await autoplay(this.video, () => generation === this.generation, () => this.setState("paused"));
  }
}

/**
 * Resolves when ICE gathering is complete, or after `ms` (whatever was
 * gathered by then goes in the offer).
 * @param {RTCPeerConnection} pc
 * @param {number} ms
 */
function gathered(pc, ms) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve(undefined);
    };
    const check = () => {
      if (pc.iceGatheringState === "complete") done();
    };
    const timer = setTimeout(done, ms);
    pc.addEventListener("icegatheringstatechange", check);
  });
}
