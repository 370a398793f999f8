// @ts-check
/**
 * Which network path a page's WebRTC connection took, from getStats: for
 * tests that must prove media went over ICE-TCP or through a TURN relay.
 */

/**
 * The protocol and type of the local candidate of the pair the page's
 * peer connection selected (the page's connections are kept in
 * `window.__pcs` by an init script).
 * @param {import("playwright-core").Page} page
 */
export function selectedPair(page) {
  return page.evaluate(async () => {
    /** @type {RTCPeerConnection[]} */
    const pcs = /** @type {any} */ (window).__pcs ?? [];
    const pc = pcs.filter((p) => p.connectionState === "connected").pop();
    if (!pc) return null;
    const stats = await pc.getStats();
    /** @type {any} */
    let pair = null;
    stats.forEach((s) => {
      if (s.type === "transport" && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
    });
    if (!pair) return null;
    const local = stats.get(pair.localCandidateId);
    const remote = stats.get(pair.remoteCandidateId);
    return {
      protocol: String(local?.protocol ?? ""),
      localType: String(local?.candidateType ?? ""),
      remoteProtocol: String(remote?.protocol ?? ""),
      remotePort: Number(remote?.port ?? 0),
      bytesReceived: Number(pair.bytesReceived ?? 0),
    };
  });
}

/** Keeps every RTCPeerConnection the page makes in `window.__pcs`. */
export function keepPeerConnections() {
  const Native = window.RTCPeerConnection;
  /** @type {RTCPeerConnection[]} */
  const pcs = [];
  /** @type {any} */ (window).__pcs = pcs;
  window.RTCPeerConnection = class extends Native {
    /** @param {ConstructorParameters<typeof RTCPeerConnection>} args */
    constructor(...args) {
      super(...args);
      pcs.push(this);
    }
  };
}
