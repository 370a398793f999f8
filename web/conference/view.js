// @ts-check
/**
 * The conference panel of a room page: a "Join conference" button, then
 * the received video (large, labelled with whose it is and why), my own
 * preview, the room's audio, the people list with "Watch" buttons, the
 * host's lock controls, microphone and camera switches, and "Leave".
 *
 * A little state is mirrored on the root element for tests and styles:
 * `data-conference-state` (idle, connecting, connected, reconnecting,
 * failed, left), `data-watching` (whose video arrives, "" for none),
 * `data-watch-mode` (auto, chosen, locked) and `data-video-locked`.
 */

import { h, messageArea, say, uid, userName } from "../ui.js";
import { lockControls } from "./lock-controls.js";
import { rosterList } from "./roster.js";
import { ConferenceSession } from "./session.js";

/** @type {Record<import("./signalling.js").SelectionMode, string>} */
const MODE_TEXT = { auto: "automatic", chosen: "your choice", locked: "locked by the host" };

/** @type {Record<import("./session.js").ConnectionState, string>} */
const STATE_TEXT = {
  idle: "Not in the conference.",
  connecting: "Connecting…",
  connected: "Connected.",
  reconnecting: "Reconnecting…",
  failed: "Not connected.",
  left: "You left the conference.",
};

/**
 * @param {object} options
 * @param {string} options.roomId
 * @param {AbortSignal} options.signal leaving the page leaves the conference
 * @returns {{element: HTMLElement, setRole: (role: import("../api.js").Role | null) => void, leave: () => void}}
 */
export function conferencePanel({ roomId, signal }) {
  const session = new ConferenceSession(roomId);
  const headingId = uid("conference-heading");

  // Before joining.
  const joinButton = h("button", { type: "button" }, "Join conference");
  const intro = h(
    "p",
    { class: "conference-intro" },
    "See and hear the others in this room. Your browser will ask for your camera and microphone.",
  );
  const joinArea = h("div", { class: "conference-join" }, intro, h("div", { class: "actions" }, joinButton));
  joinButton.addEventListener("click", () => void session.start());

  // Connection state, errors and notices.
  const stateLine = h("p", { class: "conference-state", role: "status" });
  const errorArea = messageArea("alert");
  const noticeArea = messageArea("status");

  // The received video and my preview.
  const mainVideo = h("video", {
    class: "main-video",
    autoplay: true,
    playsinline: true,
    muted: true,
    "aria-labelledby": uid("main-video-label"),
  });
  mainVideo.muted = true;
  const mainLabel = h("figcaption", { class: "video-label", id: mainVideo.getAttribute("aria-labelledby") ?? "" });
  const mainEmpty = h("p", { class: "video-empty" }, "No video yet.");
  const mainFrame = h("figure", { class: "main-frame" }, h("div", { class: "video-box" }, mainVideo, mainEmpty), mainLabel);

  const selfVideo = h("video", { class: "self-video", autoplay: true, playsinline: true, muted: true, "aria-label": "Your camera" });
  selfVideo.muted = true;
  const selfOff = h("p", { class: "video-empty" }, "Camera off");
  const selfFrame = h(
    "figure",
    { class: "self-frame" },
    h("div", { class: "video-box" }, selfVideo, selfOff),
    h("figcaption", { class: "video-label" }, "You"),
  );

  // The room's audio: an element that plays it (unmuted), or Chromium would
  // not even decode it.
  const audio = h("audio", { class: "conference-audio", autoplay: true });
  const soundButton = h("button", { type: "button", class: "secondary", hidden: true }, "Turn on sound");
  soundButton.addEventListener("click", () => {
    void audio.play().then(() => {
      soundButton.hidden = true;
    }, () => {});
  });

  // My switches.
  const micButton = h("button", { type: "button", class: "secondary" }, "Mute microphone");
  const cameraButton = h("button", { type: "button", class: "secondary" }, "Camera off");
  const leaveButton = h("button", { type: "button", class: "danger" }, "Leave");
  micButton.addEventListener("click", () => session.setAudio(!session.audioOn));
  cameraButton.addEventListener("click", () => session.setVideo(!session.videoOn));
  leaveButton.addEventListener("click", () => session.leave());
  const controls = h("div", { class: "actions conference-controls" }, micButton, cameraButton, leaveButton, soundButton);

  const roster = rosterList(session);
  const director = lockControls(session);

  const liveArea = h(
    "div",
    { class: "conference-live", hidden: true },
    h(
      "div",
      { class: "conference-body" },
      h("div", { class: "conference-stage" }, mainFrame, controls),
      h("div", { class: "conference-side" }, selfFrame, roster.element, director.element),
    ),
    audio,
  );

  const element = h(
    "section",
    { class: "card conference", id: "conference", "aria-labelledby": headingId },
    h("div", { class: "conference-head" }, h("h2", { id: headingId }, "Conference"), stateLine),
    errorArea,
    noticeArea,
    joinArea,
    liveArea,
  );

  /** @param {string} source */
  function personLabel(source) {
    const person = session.roster.find((p) => p.username === source);
    return person ? userName(person) : `@${source}`;
  }

  function drawState() {
    const { state, detail } = session;
    stateLine.dataset.state = state;
    stateLine.textContent = detail ? `${STATE_TEXT[state]} ${detail}` : STATE_TEXT[state];
    const active = state === "connecting" || state === "connected" || state === "reconnecting";
    joinArea.hidden = active;
    liveArea.hidden = !active;
    joinButton.disabled = false;
    intro.hidden = state === "failed" || state === "left";
    document.documentElement.dataset.conferenceState = state;
  }

  function drawSelection() {
    const { source } = session.selection;
    const mode = session.mode;
    mainLabel.replaceChildren();
    if (source === null) {
      mainLabel.append(session.state === "connected" ? "Nobody is sending video yet." : "No video yet.");
    } else if (source === session.you) {
      mainLabel.append("Your own video (nobody else is sending any)");
    } else {
      // Everyone sees the designated person; they themselves see whoever the automatic rule picks.
      const shownToAll = session.lock.locked && session.lock.designated === session.you;
      const why = shownToAll ? "automatic (everyone else sees you)" : MODE_TEXT[mode] ?? mode;
      mainLabel.append(personLabel(source), h("span", { class: "video-mode" }, ` · ${why}`));
    }
    mainEmpty.hidden = source !== null;
    const root = document.documentElement.dataset;
    root.watching = source ?? "";
    root.watchMode = mode;
  }

  function drawLock() {
    document.documentElement.dataset.videoLocked = String(session.lock.locked);
    mainFrame.classList.toggle("locked", session.lock.locked);
  }

  function drawMedia() {
    const local = session.local;
    if (selfVideo.srcObject !== (local?.stream ?? null)) selfVideo.srcObject = local?.stream ?? null;
    const hasAudio = Boolean(local?.audio);
    const hasVideo = Boolean(local?.video);
    micButton.textContent = session.audioOn ? "Mute microphone" : "Unmute microphone";
    micButton.setAttribute("aria-pressed", String(!session.audioOn));
    micButton.disabled = !hasAudio;
    cameraButton.textContent = session.videoOn ? "Camera off" : "Camera on";
    cameraButton.setAttribute("aria-pressed", String(!session.videoOn));
    cameraButton.disabled = !hasVideo;
    selfOff.hidden = hasVideo && session.videoOn;
    selfOff.textContent = hasVideo ? "Camera off" : "No camera";
    if (local?.problem) say(noticeArea, local.problem);
  }

  function drawRemote() {
    mainVideo.srcObject = session.remoteVideo;
    audio.srcObject = session.remoteAudio;
    if (session.remoteAudio) {
      audio.play().then(
        () => {
          soundButton.hidden = true;
        },
        (err) => {
          // Autoplay with sound was refused: one click lets it play.
          if (err instanceof DOMException && err.name === "NotAllowedError") soundButton.hidden = false;
        },
      );
    }
  }

  const unsubscribe = session.onChange((change) => {
    switch (change) {
      case "state":
        drawState();
        drawSelection();
        break;
      case "roster":
      case "talking":
        roster.update();
        director.update();
        drawSelection();
        break;
      case "selection":
        drawSelection();
        roster.update();
        break;
      case "lock":
        drawLock();
        drawSelection();
        roster.update();
        director.update();
        break;
      case "choice":
        roster.update();
        drawSelection();
        break;
      case "media":
        drawMedia();
        break;
      case "remote":
        drawRemote();
        break;
      case "error":
        say(errorArea, session.error, "error");
        break;
      case "notice":
        say(noticeArea, session.notice);
        break;
      default:
        break;
    }
  });

  drawState();
  drawSelection();
  drawLock();
  drawMedia();
  roster.update();
  director.update();

  signal.addEventListener(
    "abort",
    () => {
      session.leave();
      unsubscribe();
      const root = document.documentElement.dataset;
      delete root.conferenceState;
      delete root.watching;
      delete root.watchMode;
      delete root.videoLocked;
    },
    { once: true },
  );

  return {
    element,
    /** Only members (of any role) may join. */
    setRole(role) {
      joinButton.hidden = role === null;
    },
    /** Leaves the conference (e.g. when I am no longer a member). */
    leave() {
      session.leave();
    },
  };
}
