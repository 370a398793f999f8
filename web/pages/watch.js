// @ts-check
/**
 * Watch: one room's channel (no account needed). The title, host, viewer
 * count and whether the room is on air come from the public directory
 * stream, filtered to this room; the picture and sound are LL-HLS
 * (web/viewer/player.js), or in low-latency mode WebRTC through the room's
 * WHEP endpoint (web/viewer/whep-player.js; `?mode=webrtc` keeps the
 * choice in the address). When the room goes off air the player stops and
 * the page says so; when it comes back on air it starts again by itself.
 */

import { h } from "../ui.js";
import { followDirectory, hlsUrl, whepUrl } from "../viewer/directory.js";
import { everyTick, liveBadge, onAirTime, setLiveBadge, viewersText } from "../viewer/format.js";
import { mutedIcon, tvIcon } from "../viewer/icons.js";
import { LivePlayer } from "../viewer/player.js";
import { WhepPlayer } from "../viewer/whep-player.js";

/** @typedef {import("../viewer/directory.js").LiveBroadcast} LiveBroadcast */
/** @typedef {import("../viewer/player.js").PlayerState} PlayerState */

/**
 * What the stage shows: the player's state, or `offair`, or `waiting` for
 * the first word from the directory.
 * @typedef {PlayerState | "offair" | "waiting"} StageState
 */

/** @type {import("../router.js").Render} */
export function render({ main, params, signal }) {
  const roomId = params.room ?? "";
  document.title = "Watch — confcast";

  // The stage: the video, and on top of it what is going on.
  const video = h("video", { class: "watch-video", controls: true, playsinline: true });
  const unmute = h(
    "button",
    { type: "button", class: "watch-unmute", hidden: true },
    mutedIcon(),
    h("span", null, "Unmute"),
  );
  const overlay = h("div", { class: "watch-overlay", "aria-live": "polite" });
  const stage = h("div", { class: "watch-stage", "data-state": "waiting" }, video, overlay, unmute);

  // About the channel.
  const badge = liveBadge(false);
  const title = h("h1", { class: "watch-title" }, "Live channel");
  const host = h("span", { class: "display-name" });
  const hostLine = h("p", { class: "watch-host", hidden: true }, "Hosted by ", host);
  const viewers = h("span", { class: "watch-viewers" });
  const time = onAirTime("");
  const stats = h(
    "p",
    { class: "watch-stats meta" },
    viewers,
    h("span", { class: "viewer-sep", "aria-hidden": "true" }, " · "),
    time.element,
  );
  const description = h("p", { class: "watch-description", hidden: true });
  const latency = h("span", { class: "watch-latency" });
  /** LL-HLS (any number of viewers, a second or so behind) or WebRTC (well under a second). */
  let mode = /** @type {"hls" | "webrtc"} */ (new URLSearchParams(window.location.search).get("mode") === "webrtc" ? "webrtc" : "hls");
  const modeSwitch = h("button", { type: "button", class: "watch-mode-switch" });
  function labelModeSwitch() {
    modeSwitch.textContent = mode === "webrtc" ? "Standard stream (HLS)" : "Low latency (WebRTC)";
    modeSwitch.title =
      mode === "webrtc"
        ? "Play the standard stream: a second or so behind, works everywhere"
        : "Play over WebRTC: well under a second behind live";
  }
  labelModeSwitch();

  main.append(
    h(
      "article",
      { class: "watch-page" },
      h("p", { class: "watch-back" }, h("a", { href: "/live" }, "← Live now")),
      stage,
      h(
        "div",
        { class: "watch-info" },
        h("div", { class: "watch-title-row" }, badge, title),
        hostLine,
        stats,
        description,
        h("p", { class: "watch-mode meta" }, latency, modeSwitch),
      ),
    ),
  );

  /** @type {import("../viewer/player.js").PlayerHandlers} */
  const handlers = {
    onState: (state, message) => showStage(state, message),
    onMuted: (muted) => {
      unmute.hidden = !muted;
    },
  };
  /** @param {"hls" | "webrtc"} which */
  const makePlayer = (which) => (which === "webrtc" ? new WhepPlayer(video, handlers) : new LivePlayer(video, handlers));
  /** @type {LivePlayer | WhepPlayer} */
  let player = makePlayer(mode);
  /** @param {LiveBroadcast} broadcast */
  const sourceOf = (broadcast) => (mode === "webrtc" ? whepUrl(broadcast) : hlsUrl(broadcast));
  modeSwitch.addEventListener("click", () => {
    mode = mode === "webrtc" ? "hls" : "webrtc";
    const url = new URL(window.location.href);
    if (mode === "webrtc") url.searchParams.set("mode", "webrtc");
    else url.searchParams.delete("mode");
    history.replaceState(history.state, "", url);
    labelModeSwitch();
    player.stop();
    player = makePlayer(mode);
    if (current) {
      playing = current.broadcast_id;
      void player.start(sourceOf(current));
    }
  });
  unmute.addEventListener("click", () => {
    player.unmute();
    video.focus();
  });

  /** The broadcast the player was started for ("" when stopped). */
  let playing = "";
  /** @type {LiveBroadcast | null} what the directory said last, while on air */
  let current = null;
  let heardFromDirectory = false;
  /** The title of the room's broadcast seen last ("" before any). */
  let seenTitle = "";

  /** @type {StageState} */
  let shown = "waiting";
  let shownMessage = "";

  /** The badge, the numbers and the document's title, for the current state. */
  function refresh() {
    // A playback error is this page's problem: the room may well be on air.
    const live = current !== null && shown !== "offair" && shown !== "ended";
    setLiveBadge(badge, live);
    stats.hidden = !live;
    if (shown === "offair" || shown === "ended") {
      document.title = seenTitle ? `Off air: ${seenTitle} — confcast` : "Off air — confcast";
    } else if (current) {
      document.title = `${current.title} — live on confcast`;
    }
  }

  /**
   * @param {StageState} state
   * @param {string} [message]
   */
  function showStage(state, message = "") {
    const changed = state !== shown || message !== shownMessage;
    shown = state;
    shownMessage = message;
    stage.dataset.state = state;
    const stopped = state === "offair" || state === "ended" || state === "error";
    video.hidden = stopped;
    unmute.hidden = stopped || !video.muted;
    refresh();
    showLatency();
    if (!changed && overlay.childElementCount > 0) return;
    overlay.replaceChildren();
    switch (state) {
      case "waiting":
      case "connecting":
        overlay.append(h("p", { class: "watch-spinner" }, message || "Connecting…"));
        break;
      case "buffering":
        overlay.append(h("p", { class: "watch-spinner" }, "Buffering…"));
        break;
      case "offair":
      case "ended":
        overlay.append(
          h(
            "div",
            { class: "watch-card" },
            tvIcon(),
            h("h2", null, "Off air"),
            h("p", null, "This channel is not broadcasting right now. It will start here by itself when it goes live again."),
            h("p", null, h("a", { href: "/live" }, "See who is live now")),
          ),
        );
        break;
      case "error":
        overlay.append(
          h(
            "div",
            { class: "watch-card", role: "alert" },
            h("h2", null, "Playback stopped"),
            h("p", null, message || "The video could not be played."),
            h("p", null, h("button", { type: "button", onclick: () => retry() }, "Try again")),
          ),
        );
        break;
      default:
        break;
    }
  }

  /** How far behind live the picture is, for the viewer (and for tests). */
  function showLatency() {
    const seconds = player.state === "playing" ? player.latency() : null;
    stage.dataset.engine = player.engine;
    if (seconds === null) {
      latency.textContent = "";
      delete stage.dataset.latency;
      return;
    }
    stage.dataset.latency = seconds.toFixed(2);
    latency.textContent =
      player.engine === "webrtc"
        ? `Low latency: ${Math.round(seconds * 1000)} ms buffered. `
        : `About ${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s behind live. `;
  }

  function retry() {
    if (current) {
      playing = current.broadcast_id;
      player.retry();
    } else {
      showStage("offair");
    }
  }

  /** @param {LiveBroadcast} broadcast */
  function describe(broadcast) {
    seenTitle = broadcast.title;
    title.textContent = broadcast.title;
    host.textContent = broadcast.host.display_name;
    host.title = `@${broadcast.host.username}`;
    hostLine.hidden = false;
    viewers.textContent = viewersText(broadcast.viewers);
    time.update(broadcast.started_at);
    description.textContent = broadcast.description;
    description.hidden = broadcast.description.trim() === "";
  }

  /** @param {LiveBroadcast[]} broadcasts */
  function onList(broadcasts) {
    const first = !heardFromDirectory;
    heardFromDirectory = true;
    const entry = broadcasts.find((b) => b.room_id === roomId) ?? null;
    current = entry;
    if (entry) {
      describe(entry);
      if (entry.broadcast_id !== playing) {
        // On air, or on air again with a new broadcast: (re)start.
        playing = entry.broadcast_id;
        void player.start(sourceOf(entry));
      } else {
        // Same broadcast: only the numbers changed.
        refresh();
      }
      return;
    }
    if (playing !== "" || first) {
      playing = "";
      player.stop();
      if (first) title.textContent = "Channel not on air";
      showStage("offair");
    }
  }

  showStage("waiting");
  followDirectory(signal, { onList });
  everyTick(signal, () => time.update());

  const latencyTimer = setInterval(showLatency, 1000);

  signal.addEventListener(
    "abort",
    () => {
      clearInterval(latencyTimer);
      player.stop();
    },
    { once: true },
  );
}
