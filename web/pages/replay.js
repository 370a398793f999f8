// @ts-check
/**
 * Replay: one past broadcast (no account needed, as it was public on air).
 * The recording is an HLS VOD playlist played by web/viewer/replay-player.js;
 * the video's own controls seek.
 */

import * as api from "../api.js";
import { dateTime, errorText, h } from "../ui.js";
import { tvIcon } from "../viewer/icons.js";
import { durationText } from "../viewer/recordings.js";
import { ReplayPlayer } from "../viewer/replay-player.js";

/** @type {import("../router.js").Render} */
export async function render({ main, params, signal }) {
  const id = params.id ?? "";
  document.title = "Replay — confcast";

  const video = h("video", { class: "watch-video", controls: true, playsinline: true, preload: "metadata" });
  const overlay = h("div", { class: "watch-overlay", "aria-live": "polite" });
  const stage = h("div", { class: "watch-stage", "data-state": "waiting" }, video, overlay);
  const title = h("h1", { class: "watch-title" }, "Past broadcast");
  const host = h("span", { class: "display-name" });
  const hostLine = h("p", { class: "watch-host", hidden: true }, "Hosted by ", host);
  const when = h("p", { class: "watch-stats meta", hidden: true });
  const description = h("p", { class: "watch-description", hidden: true });
  main.append(
    h(
      "article",
      { class: "watch-page replay-page" },
      h("p", { class: "watch-back" }, h("a", { href: "/live" }, "← Live now and recent broadcasts")),
      stage,
      h(
        "div",
        { class: "watch-info" },
        h("div", { class: "watch-title-row" }, h("span", { class: "live-badge", "data-live": "false" }, "Replay"), title),
        hostLine,
        when,
        description,
      ),
    ),
  );

  /**
   * @param {string} heading
   * @param {string} text
   */
  const stopped = (heading, text) => {
    stage.dataset.state = "error";
    video.hidden = true;
    overlay.replaceChildren(
      h("div", { class: "watch-card", role: "alert" }, tvIcon(), h("h2", null, heading), h("p", null, text), h("p", null, h("a", { href: "/live" }, "See who is live now"))),
    );
  };

  /** @type {api.Recording} */
  let recording;
  try {
    recording = await api.getRecording(id, signal);
  } catch (err) {
    if (signal.aborted) return;
    const gone = err instanceof api.ApiError && err.status === 404;
    stopped(gone ? "Not found" : "Could not load the recording", gone ? "This recording does not exist, or it was deleted." : errorText(err));
    return;
  }
  if (signal.aborted) return;
  document.title = `${recording.title} (replay) — confcast`;
  title.textContent = recording.title;
  host.textContent = recording.host.display_name;
  host.title = `@${recording.host.username}`;
  hostLine.hidden = false;
  when.replaceChildren("Broadcast ", dateTime(recording.started_at), ` · ${durationText(recording.duration_seconds)}`);
  when.hidden = false;
  description.textContent = recording.description;
  description.hidden = recording.description.trim() === "";
  if (!recording.replay) {
    stopped("Not ready", recording.state === "recording" ? "This broadcast is still being recorded. Come back when it has ended." : "Nothing of this broadcast could be recorded.");
    return;
  }

  const player = new ReplayPlayer(video, {
    onState(state, message) {
      stage.dataset.state = state === "ready" ? "playing" : state === "loading" ? "connecting" : "error";
      stage.dataset.engine = player.engine;
      if (state === "error") {
        stopped("Playback stopped", message ?? "The recording could not be played.");
      } else if (state === "loading") {
        overlay.replaceChildren(h("p", { class: "watch-spinner" }, "Loading…"));
      } else {
        overlay.replaceChildren();
      }
    },
  });
  void player.start(recording.replay.hls);
  signal.addEventListener("abort", () => player.stop(), { once: true });
}
