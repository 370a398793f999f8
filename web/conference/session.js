// @ts-check
/**
 * One person's presence in a room's conference: the camera and microphone,
 * the signalling socket and the peer connection, and everything the server
 * tells about the room (who is there, who talks, whose video arrives, the
 * lock). When the socket or the media connection is lost the session tears
 * the peer connection down (the camera stays open), waits 1, 2, 4… up to
 * 10 seconds, and joins again with a fresh offer; the page never reloads.
 *
 * No DOM here: the view listens with {@link ConferenceSession.onChange}.
 */

import { openLocalMedia, stopLocalMedia } from "./local-media.js";
import { iceConfig } from "./ice-servers.js";
import { closePeer, completeOffer, createPeer } from "./peer.js";
import { PROTOCOL_VERSION, Signalling } from "./signalling.js";

/** @typedef {import("./signalling.js").RosterEntry} RosterEntry */
/** @typedef {import("./signalling.js").ServerMessage} ServerMessage */
/** @typedef {import("./signalling.js").SelectionMode} SelectionMode */

/**
 * `idle`: not joined yet; `connecting`: the first attempt; `connected`:
 * joined and media flowing; `reconnecting`: lost, trying again; `failed`:
 * given up (see `detail`); `left`: the user left.
 * @typedef {"idle" | "connecting" | "connected" | "reconnecting" | "failed" | "left"} ConnectionState
 */

/**
 * What changed, for listeners that redraw only their part.
 * @typedef {"state" | "roster" | "talking" | "selection" | "lock" | "media" | "remote" | "choice" | "error" | "notice"} Change
 */

/** Back-off before the n-th retry: 1 s, 2 s, 4 s, 8 s, then 10 s. */
const RETRY_BASE_MS = 1000;
const RETRY_MAX_MS = 10_000;
/** Attempts in a row that never got connected before giving up. */
const MAX_FAILED_ATTEMPTS = 8;
/** How long a "disconnected" peer connection may take to recover by itself. */
const DISCONNECTED_GRACE_MS = 4000;

/** Join errors that another attempt will not cure. */
const FATAL_JOIN_ERRORS = new Set(["invalid_sdp", "unsupported_version", "too_large", "not_permitted", "invalid_message"]);

/**
 * One attempt to be in the conference: a socket and a peer connection.
 * @typedef {object} Connection
 * @property {Signalling} signalling
 * @property {import("./peer.js").Peer} peer
 * @property {boolean} joined the server accepted the join and its answer is applied
 * @property {ReturnType<typeof setTimeout> | null} graceTimer
 * @property {string} lostBecause the server's last word before closing, if any
 */

export class ConferenceSession {
  /** @param {string} roomId */
  constructor(roomId) {
    this.roomId = roomId;
    /** @type {ConnectionState} */
    this.state = "idle";
    /** Explains the state: why it failed, when the next attempt is. */
    this.detail = "";
    /** @type {import("./local-media.js").LocalMedia | null} */
    this.local = null;
    /** @type {Connection | null} */
    this.conn = null;
    /** @type {string | null} my username, once joined */
    this.you = null;
    /** @type {import("../api.js").Role | null} my role in the conference */
    this.role = null;
    /** @type {RosterEntry[]} */
    this.roster = [];
    /** @type {{source: string | null, mode: SelectionMode}} whose video I receive */
    this.selection = { source: null, mode: "auto" };
    /** @type {{locked: boolean, designated: string | null}} */
    this.lock = { locked: false, designated: null };
    /** @type {string | null} */
    this.dominant = null;
    /** @type {string | null} whom I chose to watch (null: automatic) */
    this.choice = null;
    /** @type {string | null} the choice before the last watch request, restored if it is refused */
    this.choiceBefore = null;
    this.audioOn = true;
    this.videoOn = true;
    /** @type {MediaStream | null} the room's audio mix */
    this.remoteAudio = null;
    /** @type {MediaStream | null} the one video the server sends me */
    this.remoteVideo = null;
    /** The last error the server reported (shown to the user). */
    this.error = "";
    /** The last notice (someone left, …). */
    this.notice = "";
    this.failures = 0;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.retryTimer = null;
    /** Send my earlier watch choice again once the new connection may (after a reconnect). */
    this.restoreChoice = false;
    /** @type {Set<(change: Change) => void>} */
    this.listeners = new Set();
  }

  /**
   * @param {(change: Change) => void} listener
   * @returns {() => void} unsubscribe
   */
  onChange(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** @param {Change} change */
  emit(change) {
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch (err) {
        console.error("conference listener failed", err);
      }
    }
  }

  /**
   * @param {ConnectionState} state
   * @param {string} [detail]
   */
  setState(state, detail = "") {
    this.state = state;
    this.detail = detail;
    this.emit("state");
  }

  /**
   * Why I receive the video I receive. The server's word, except that a
   * `watch` which does not change the source (choosing the person already
   * shown automatically, or "Automatic" while the chosen person is shown)
   * brings no new `selection` message: by the rules of docs/forwarding.md,
   * unlocked, my own choice applies whenever its person is the source.
   * @returns {SelectionMode}
   */
  get mode() {
    const { source, mode } = this.selection;
    if (mode === "locked" || this.lock.locked) return mode;
    return this.choice !== null && source === this.choice ? "chosen" : "auto";
  }

  /** Whether I may lock, designate and unlock. */
  get canDirect() {
    return this.role === "host" || this.role === "admin";
  }

  /** Opens camera and microphone (once) and joins. */
  async start() {
    if (this.state !== "idle" && this.state !== "failed" && this.state !== "left") return;
    this.failures = 0;
    this.error = "";
    this.notice = "";
    this.setState("connecting");
    if (!this.local) {
      this.local = await openLocalMedia();
      // (`this.state` may have changed while waiting: a plain comparison would be narrowed.)
      if (/** @type {ConnectionState} */ (this.state) !== "connecting") {
        // Left while the browser was asking for the devices.
        stopLocalMedia(this.local.stream);
        this.local = null;
        return;
      }
      if (this.local.audio) this.local.audio.enabled = this.audioOn;
      if (this.local.video) this.local.video.enabled = this.videoOn;
      this.emit("media");
    }
    void this.connect();
  }

  /** Starts one attempt: the ICE servers, a new peer connection and a new socket. */
  async connect() {
    const local = this.local;
    if (!local) return;
    this.retryTimer = null;
    const ice = await iceConfig();
    // Left, failed or already connecting again while the relays were fetched.
    if (this.local !== local || this.conn !== null || (this.state !== "connecting" && this.state !== "reconnecting")) return;
    const peer = createPeer(local, ice);
    const offer = completeOffer(peer.pc).then((sdp) => {
      // No address at all, because every relay refused: no use in joining.
      if (!/^a=candidate:/m.test(sdp) && peer.relayErrors.length > 0) {
        throw new RelayRefused(`The media relay (TURN) refused the connection: ${peer.relayErrors[0].replace(/\.$/, "")}.`);
      }
      return sdp;
    });
    /** @type {Connection} */
    const conn = {
      peer,
      joined: false,
      graceTimer: null,
      lostBecause: "",
      signalling: new Signalling(this.roomId, {
        onOpen: () => {
          offer.then(
            (sdp) => {
              if (this.conn === conn) conn.signalling.send({ type: "join", version: PROTOCOL_VERSION, sdp });
            },
            (err) => {
              if (this.conn !== conn) return;
              if (err instanceof RelayRefused) {
                this.lost(conn, err.message);
                return;
              }
              console.error("could not make an offer", err);
              this.fail(`The browser could not start the media connection: ${err instanceof Error ? err.message : err}`);
            },
          );
        },
        onMessage: (message) => {
          if (this.conn === conn) this.handle(conn, message);
        },
        onClose: () => {
          if (this.conn === conn) this.lost(conn, conn.lostBecause || "The connection to the server was lost.");
        },
      }),
    };
    // Keep an early rejection from being reported as unhandled; onOpen reports it.
    offer.catch(() => {});
    this.conn = conn;
    peer.pc.addEventListener("connectionstatechange", () => {
      if (this.conn === conn) this.peerStateChanged(conn);
    });
  }

  /** @param {Connection} conn */
  peerStateChanged(conn) {
    const state = conn.peer.pc.connectionState;
    if (state === "connected") {
      if (conn.graceTimer !== null) clearTimeout(conn.graceTimer);
      conn.graceTimer = null;
      if (conn.joined) this.becameConnected();
    } else if (state === "failed") {
      this.lost(conn, "The media connection failed.");
    } else if (state === "disconnected" && conn.graceTimer === null) {
      conn.graceTimer = setTimeout(() => {
        conn.graceTimer = null;
        if (this.conn === conn && conn.peer.pc.connectionState !== "connected") {
          this.lost(conn, "The media connection was interrupted.");
        }
      }, DISCONNECTED_GRACE_MS);
    }
  }

  becameConnected() {
    this.failures = 0;
    if (this.state !== "connected") this.setState("connected");
  }

  /**
   * @param {Connection} conn
   * @param {ServerMessage} message
   */
  handle(conn, message) {
    switch (message.type) {
      case "joined":
        void this.joined(conn, message);
        break;
      case "roster":
        this.roster = Array.isArray(message.participants) ? message.participants : [];
        this.emit("roster");
        break;
      case "selection":
        this.selection = { source: message.source ?? null, mode: message.mode ?? "auto" };
        this.emit("selection");
        break;
      case "lock":
        this.lock = { locked: Boolean(message.locked), designated: message.designated ?? null };
        if (!this.lock.locked && this.restoreChoice) {
          this.restoreChoice = false;
          if (this.choice !== null) conn.signalling.send({ type: "watch", username: this.choice });
        }
        this.emit("lock");
        break;
      case "talking":
        this.roster = this.roster.map((p) => (p.username === message.username ? { ...p, talking: message.talking } : p));
        this.emit("talking");
        break;
      case "dominant":
        this.dominant = message.username ?? null;
        this.emit("talking");
        break;
      case "notice":
        if (message.code === "replaced") {
          // Another tab or device of mine took my place: do not fight it.
          this.teardown();
          this.stopLocal();
          this.setState("failed", "You joined this conference from somewhere else (another tab or device).");
          return;
        }
        this.notice = message.message;
        this.emit("notice");
        break;
      case "error":
        this.serverError(conn, message);
        break;
      case "pong":
        break;
      default:
        break;
    }
  }

  /**
   * @param {Connection} conn
   * @param {{you: string, role: import("../api.js").Role, sdp: string}} message
   */
  async joined(conn, message) {
    this.you = message.you;
    this.role = message.role;
    try {
      await conn.peer.pc.setRemoteDescription({ type: "answer", sdp: message.sdp });
    } catch (err) {
      if (this.conn !== conn) return;
      console.error("the server's answer could not be applied", err);
      this.lost(conn, "The server's answer could not be used by this browser.");
      return;
    }
    if (this.conn !== conn) return;
    conn.joined = true;
    this.remoteAudio = new MediaStream([conn.peer.audio.receiver.track]);
    this.remoteVideo = new MediaStream([conn.peer.video.receiver.track]);
    this.emit("remote");
    this.sendMedia(true);
    if (this.choice !== null) this.restoreChoice = true;
    if (this.choice !== null && !this.lock.locked) {
      // The lock message may have come before the answer was applied.
      this.restoreChoice = false;
      conn.signalling.send({ type: "watch", username: this.choice });
    }
    if (conn.peer.pc.connectionState === "connected") this.becameConnected();
  }

  /**
   * @param {Connection} conn
   * @param {{code: string, message: string, request: string | null}} message
   */
  serverError(conn, message) {
    if (message.request === "join") {
      if (message.code === "already_joined") return;
      if (FATAL_JOIN_ERRORS.has(message.code)) {
        this.fail(`The server refused to let you join: ${message.message}`);
      } else {
        conn.lostBecause = message.message;
        this.lost(conn, `The server could not let you join: ${message.message}`);
      }
      return;
    }
    if (message.code === "ice_timeout" || message.code === "ice_disconnected") {
      // The server closes the socket next; reconnecting handles it.
      conn.lostBecause = capitalise(message.message);
      return;
    }
    if (message.request === "watch") {
      this.choice = this.choiceBefore;
      this.emit("choice");
    }
    this.error = capitalise(message.message || message.code);
    this.emit("error");
  }

  /**
   * The socket or the media connection is gone: try again later.
   * @param {Connection} conn
   * @param {string} reason
   */
  lost(conn, reason) {
    if (this.conn !== conn) return;
    this.teardown();
    this.failures += 1;
    if (this.failures >= MAX_FAILED_ATTEMPTS) {
      this.setState("failed", `${reason} Gave up after ${this.failures} attempts.`);
      return;
    }
    const delay = Math.min(RETRY_BASE_MS * 2 ** (this.failures - 1), RETRY_MAX_MS);
    this.setState("reconnecting", `${reason} Trying again in ${Math.round(delay / 1000)} s.`);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.state === "reconnecting") void this.connect();
    }, delay);
  }

  /**
   * Gives up for good (until the user joins again).
   * @param {string} reason
   */
  fail(reason) {
    this.teardown();
    this.setState("failed", reason);
  }

  /** Closes the current socket and peer connection; the local media stays. */
  teardown() {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const conn = this.conn;
    this.conn = null;
    if (!conn) return;
    if (conn.graceTimer !== null) clearTimeout(conn.graceTimer);
    conn.signalling.close();
    closePeer(conn.peer);
    this.roster = [];
    this.selection = { source: null, mode: "auto" };
    this.dominant = null;
    this.remoteAudio = null;
    this.remoteVideo = null;
    this.emit("roster");
    this.emit("selection");
    this.emit("remote");
  }

  stopLocal() {
    if (this.local) stopLocalMedia(this.local.stream);
    this.local = null;
    this.emit("media");
  }

  /** Leaves the conference: tells the server, closes everything, turns the camera off. */
  leave() {
    if (this.state === "idle" || this.state === "left") return;
    this.conn?.signalling.send({ type: "leave" });
    this.teardown();
    this.stopLocal();
    this.lock = { locked: false, designated: null };
    this.setState("left");
  }

  /**
   * Watch a participant's video, or `null` for automatic.
   * @param {string | null} username
   */
  watch(username) {
    this.choiceBefore = this.choice;
    this.choice = username;
    this.error = "";
    this.emit("error");
    this.emit("choice");
    this.conn?.signalling.send({ type: "watch", username });
  }

  /**
   * Lock everyone to a participant's video, or change whom they see while locked.
   * @param {string} username
   */
  direct(username) {
    this.error = "";
    this.emit("error");
    if (this.lock.locked) this.conn?.signalling.send({ type: "designate", username });
    else this.conn?.signalling.send({ type: "lock", designated: username });
  }

  unlock() {
    this.error = "";
    this.emit("error");
    this.conn?.signalling.send({ type: "unlock" });
  }

  /** @param {boolean} on */
  setAudio(on) {
    this.audioOn = on;
    if (this.local?.audio) this.local.audio.enabled = on;
    this.sendMedia();
    this.emit("media");
  }

  /** @param {boolean} on */
  setVideo(on) {
    this.videoOn = on;
    if (this.local?.video) this.local.video.enabled = on;
    this.sendMedia();
    this.emit("media");
  }

  /**
   * Tells the server whether my microphone and camera are on (shown in the roster).
   * @param {boolean} [onlyIfOff] skip it when both are on (the server assumes that at join)
   */
  sendMedia(onlyIfOff = false) {
    const conn = this.conn;
    if (!conn?.joined) return;
    const audio = this.audioOn && Boolean(this.local?.audio);
    const video = this.videoOn && Boolean(this.local?.video);
    if (onlyIfOff && audio && video) return;
    conn.signalling.send({ type: "media", audio, video });
  }
}

/** Every TURN relay refused this browser (expired or wrong credentials, say). */
class RelayRefused extends Error {}

/** @param {string} text */
function capitalise(text) {
  return text ? text[0].toUpperCase() + text.slice(1) : text;
}
