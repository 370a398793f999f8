// @ts-check
/**
 * Where a peer connection may send its media besides the server's own
 * addresses: the TURN relays the server names, with credentials made for
 * the logged-in user that expire (`GET /api/v1/ice-servers`). Fetched
 * afresh for every connection, so a page left open never uses stale ones.
 * Without a login, or when the server has no relay, the list is empty and
 * media goes over UDP or ICE-TCP directly to the server.
 *
 * `?ice=relay` on the page's address makes the connection use relays only
 * (`iceTransportPolicy: "relay"`): a way to check that a TURN setup works
 * (docs/deploy.md), not something users need.
 */

/**
 * @typedef {object} IceConfig
 * @property {RTCIceServer[]} iceServers
 * @property {RTCIceTransportPolicy} iceTransportPolicy
 */

/** @returns {Promise<IceConfig>} */
export async function iceConfig() {
  const relayOnly = new URLSearchParams(window.location.search).get("ice") === "relay";
  return { iceServers: await fetchIceServers(), iceTransportPolicy: relayOnly ? "relay" : "all" };
}

/**
 * The relays for this user; `[]` when there are none or they cannot be had.
 * @returns {Promise<RTCIceServer[]>}
 */
export async function fetchIceServers() {
  try {
    const response = await fetch("/api/v1/ice-servers", { credentials: "same-origin", cache: "no-store" });
    if (!response.ok) return [];
    const body = await response.json();
    if (!Array.isArray(body?.ice_servers)) return [];
    return body.ice_servers
      .filter((/** @type {any} */ s) => Array.isArray(s?.urls) && typeof s.username === "string" && typeof s.credential === "string")
      .map((/** @type {{urls: string[], username: string, credential: string}} */ s) => ({
        urls: s.urls,
        username: s.username,
        credential: s.credential,
      }));
  } catch (err) {
    console.warn("could not fetch the ICE servers", err);
    return [];
  }
}
