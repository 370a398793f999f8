// @ts-check
/**
 * The JSON API under /api/v1: one function per call, and the types of the
 * objects it returns. Authentication is the HttpOnly `confcast_session`
 * cookie the server sets, so every request is sent with same-origin
 * credentials and this module never sees a token.
 */

/**
 * @typedef {object} UserRef
 * @property {string} username
 * @property {string} display_name
 */

/** @typedef {"host" | "admin" | "member"} Role */

/**
 * A room as it appears in a user's room list.
 * @typedef {object} RoomSummary
 * @property {string} id
 * @property {string} title
 * @property {boolean} personal
 * @property {Role} role
 * @property {UserRef} host
 */

/**
 * An encoder's key for publishing into a room over WHIP.
 * @typedef {object} IngestKey
 * @property {string} id
 * @property {string} name
 * @property {string} created_at
 */

/**
 * @typedef {object} CreatedIngestKey
 * @property {IngestKey} key
 * @property {string} token the bearer secret, shown only this once
 * @property {string} whip_url a path such as `/api/v1/rooms/<id>/whip`
 */

/**
 * @typedef {object} Member
 * @property {string} username
 * @property {string} display_name
 * @property {Role} role
 * @property {string} [joined_at] RFC 3339
 */

/**
 * @typedef {object} Room
 * @property {string} id
 * @property {string} title
 * @property {boolean} personal
 * @property {UserRef} host
 * @property {Role} your_role
 * @property {Member[]} members
 * @property {string} created_at RFC 3339
 */

/** @typedef {"pending" | "accepted" | "declined" | "cancelled"} InvitationStatus */

/**
 * @typedef {object} Invitation
 * @property {string} id
 * @property {{id: string, title: string}} room
 * @property {UserRef} inviter
 * @property {UserRef} invitee
 * @property {InvitationStatus} status
 * @property {string} created_at
 */

/**
 * @typedef {object} InviteLink
 * @property {string} token
 * @property {string} url a path such as `/join/<token>`
 * @property {string} expires_at
 */

/**
 * @typedef {object} Me
 * @property {UserRef} user
 * @property {RoomSummary[]} rooms
 * @property {boolean} operator may open the operator overview (/operator)
 */

/**
 * @typedef {object} UserPage
 * @property {UserRef[]} users
 * @property {number | null} next_offset
 */

/**
 * A past (or still recording) broadcast.
 * @typedef {object} Recording
 * @property {string} id the broadcast's id
 * @property {string} room_id
 * @property {string} title
 * @property {string} description
 * @property {UserRef} host
 * @property {string} started_at RFC 3339
 * @property {string | null} ended_at RFC 3339
 * @property {"recording" | "ready" | "failed"} state
 * @property {number} duration_seconds
 * @property {number} bytes
 * @property {string} [problem] the last storage problem (members only)
 * @property {{hls: string, page: string} | null} replay once ready
 */

/**
 * @typedef {object} RecordingPage
 * @property {Recording[]} recordings
 * @property {number | null} next_offset
 */

const BASE = "/api/v1";

/** An error answer of the API (`{"error": {"code", "message"}}`) or a network failure. */
export class ApiError extends Error {
  /**
   * @param {number} status HTTP status, 0 when the server could not be reached
   * @param {string} code machine-readable code, e.g. `username_taken`
   * @param {string} message human-readable explanation from the server
   * @param {number | null} [retryAfter] seconds, from a Retry-After header
   */
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/** @type {Set<() => void>} */
const unauthenticatedListeners = new Set();

/**
 * Calls `listener` whenever a request is refused with 401 `unauthenticated`
 * (the session expired or was logged out elsewhere).
 * @param {() => void} listener
 * @returns {() => void} unsubscribe
 */
export function onUnauthenticated(listener) {
  unauthenticatedListeners.add(listener);
  return () => unauthenticatedListeners.delete(listener);
}

/**
 * @param {string} method
 * @param {string} path under /api/v1
 * @param {unknown} [body] sent as JSON when given
 * @param {AbortSignal} [signal]
 * @returns {Promise<any>} the parsed JSON body, or null for an empty answer
 */
async function request(method, path, body, signal) {
  /** @type {RequestInit} */
  const init = {
    method,
    credentials: "same-origin",
    headers: { Accept: "application/json" },
    signal,
  };
  if (body !== undefined) {
    init.headers = { Accept: "application/json", "Content-Type": "application/json" };
    init.body = JSON.stringify(body);
  }
  /** @type {Response} */
  let response;
  try {
    response = await fetch(BASE + path, init);
  } catch (err) {
    if (err instanceof DOMException && err.name === "AbortError") throw err;
    throw new ApiError(0, "network", "The server could not be reached. Check your connection and try again.");
  }
  const text = await response.text();
  /** @type {any} */
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const error = data && typeof data === "object" && data.error ? data.error : null;
    const code = error && typeof error.code === "string" ? error.code : `http_${response.status}`;
    const message =
      error && typeof error.message === "string" && error.message
        ? error.message
        : `The server answered ${response.status} ${response.statusText}`.trim();
    const retry = Number.parseInt(response.headers.get("Retry-After") ?? "", 10);
    if (response.status === 401 && code === "unauthenticated") {
      for (const listener of unauthenticatedListeners) listener();
    }
    throw new ApiError(response.status, code, message, Number.isFinite(retry) ? retry : null);
  }
  return data;
}

/** @param {string} segment */
const enc = (segment) => encodeURIComponent(segment);

/**
 * @param {{username: string, password: string, display_name: string}} input
 * @returns {Promise<{user: UserRef, room: RoomSummary, token: string}>}
 */
export function register(input) {
  return request("POST", "/auth/register", input);
}

/**
 * @param {{username: string, password: string}} input
 * @returns {Promise<{user: UserRef, token: string}>}
 */
export function login(input) {
  return request("POST", "/auth/login", input);
}

/** @returns {Promise<void>} */
export async function logout() {
  await request("POST", "/auth/logout");
}

/**
 * @param {AbortSignal} [signal]
 * @returns {Promise<Me>}
 */
export function me(signal) {
  return request("GET", "/me", undefined, signal);
}

/**
 * @param {string} prefix
 * @param {number} offset
 * @param {AbortSignal} [signal]
 * @param {number} [limit]
 * @returns {Promise<UserPage>}
 */
export function searchUsers(prefix, offset, signal, limit = 20) {
  const query = new URLSearchParams({ q: prefix, limit: String(limit), offset: String(offset) });
  return request("GET", `/users?${query}`, undefined, signal);
}

/**
 * @param {string} title
 * @returns {Promise<Room>}
 */
export function createRoom(title) {
  return request("POST", "/rooms", { title });
}

/**
 * @param {string} id
 * @param {AbortSignal} [signal]
 * @returns {Promise<Room>}
 */
export function getRoom(id, signal) {
  return request("GET", `/rooms/${enc(id)}`, undefined, signal);
}

/**
 * @param {string} id
 * @param {string} title
 * @returns {Promise<Room>}
 */
export function renameRoom(id, title) {
  return request("PATCH", `/rooms/${enc(id)}`, { title });
}

/**
 * @param {string} id
 * @returns {Promise<void>}
 */
export async function deleteRoom(id) {
  await request("DELETE", `/rooms/${enc(id)}`);
}

/**
 * @param {string} roomId
 * @param {string} username
 * @param {"admin" | "member"} role
 * @returns {Promise<Room>}
 */
export function setMemberRole(roomId, username, role) {
  return request("PUT", `/rooms/${enc(roomId)}/members/${enc(username)}`, { role });
}

/**
 * @param {string} roomId
 * @param {string} username
 * @returns {Promise<void>}
 */
export async function removeMember(roomId, username) {
  await request("DELETE", `/rooms/${enc(roomId)}/members/${enc(username)}`);
}

/**
 * @param {string} roomId
 * @param {string} username
 * @returns {Promise<Invitation>}
 */
export function inviteUser(roomId, username) {
  return request("POST", `/rooms/${enc(roomId)}/invitations`, { username });
}

/**
 * My pending incoming invitations.
 * @param {AbortSignal} [signal]
 * @returns {Promise<Invitation[]>}
 */
export async function listInvitations(signal) {
  /** @type {{invitations: Invitation[]}} */
  const data = await request("GET", "/invitations", undefined, signal);
  return data.invitations;
}

/**
 * @param {string} id
 * @returns {Promise<{invitation: Invitation, room: RoomSummary}>}
 */
export function acceptInvitation(id) {
  return request("POST", `/invitations/${enc(id)}/accept`);
}

/**
 * @param {string} id
 * @returns {Promise<{invitation: Invitation}>}
 */
export function declineInvitation(id) {
  return request("POST", `/invitations/${enc(id)}/decline`);
}

/**
 * @param {string} roomId
 * @param {number} [expiresInSeconds] the server's default when omitted
 * @returns {Promise<InviteLink>}
 */
export function createInviteLink(roomId, expiresInSeconds) {
  const body = expiresInSeconds === undefined ? {} : { expires_in_seconds: expiresInSeconds };
  return request("POST", `/rooms/${enc(roomId)}/invite-links`, body);
}

/**
 * @param {string} token
 * @returns {Promise<{room: RoomSummary}>}
 */
export function acceptInviteLink(token) {
  return request("POST", `/invite-links/${enc(token)}/accept`);
}

/**
 * @param {string} roomId
 * @param {string} name what the encoder is called in the room
 * @returns {Promise<CreatedIngestKey>}
 */
export function createIngestKey(roomId, name) {
  return request("POST", `/rooms/${enc(roomId)}/ingest-keys`, { name });
}

/**
 * @param {string} roomId
 * @param {AbortSignal} [signal]
 * @returns {Promise<{keys: IngestKey[]}>}
 */
export function ingestKeys(roomId, signal) {
  return request("GET", `/rooms/${enc(roomId)}/ingest-keys`, undefined, signal);
}

/**
 * @param {string} roomId
 * @param {string} keyId
 * @returns {Promise<void>}
 */
export async function deleteIngestKey(roomId, keyId) {
  await request("DELETE", `/rooms/${enc(roomId)}/ingest-keys/${enc(keyId)}`);
}

/**
 * A room's recordings, newest first (members).
 * @param {string} roomId
 * @param {AbortSignal} [signal]
 * @returns {Promise<RecordingPage>}
 */
export function roomRecordings(roomId, signal) {
  return request("GET", `/rooms/${enc(roomId)}/recordings`, undefined, signal);
}

/**
 * Recent past broadcasts anyone can replay, newest first.
 * @param {number} limit 1-50
 * @param {AbortSignal} [signal]
 * @returns {Promise<RecordingPage>}
 */
export function recentRecordings(limit, signal) {
  return request("GET", `/recordings?limit=${limit}`, undefined, signal);
}

/**
 * @param {string} id
 * @param {AbortSignal} [signal]
 * @returns {Promise<Recording>}
 */
export function getRecording(id, signal) {
  return request("GET", `/recordings/${enc(id)}`, undefined, signal);
}

/**
 * Deletes a recording (the room's host).
 * @param {string} id
 * @returns {Promise<void>}
 */
export async function deleteRecording(id) {
  await request("DELETE", `/recordings/${enc(id)}`);
}

/**
 * What a node is doing, for its operators (`GET /operator/overview`).
 * @typedef {object} OperatorOverview
 * @property {string} version
 * @property {"all" | "conference" | "stream"} role
 * @property {string} started_at RFC 3339
 * @property {number} uptime_seconds
 * @property {{id: string, title: string, participants: string[], on_air: boolean}[]} rooms
 * @property {{room_id: string, broadcast_id: string, title: string, host: UserRef, started_at: string, hls_viewers: number, webrtc_viewers: number}[]} broadcasts
 * @property {{data_folder_bytes: number | null, available_bytes: number | null, recordings_bytes: number, recordings: number}} disk
 */

/**
 * The operator overview (403 `not_operator` for everyone else).
 * @param {AbortSignal} [signal]
 * @returns {Promise<OperatorOverview>}
 */
export function operatorOverview(signal) {
  return request("GET", "/operator/overview", undefined, signal);
}
