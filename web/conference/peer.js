// @ts-check
/**
 * The WebRTC side of a conference connection: one RTCPeerConnection with an
 * audio and a video transceiver (both sendrecv, audio first), and an offer
 * that already carries every ICE candidate (the server takes no trickle).
 * The server sends the room's audio mix and one chosen video back on the
 * same transceivers, so whose video arrives can change without a new offer.
 */

/**
 * @typedef {object} Peer
 * @property {RTCPeerConnection} pc
 * @property {RTCRtpTransceiver} audio
 * @property {RTCRtpTransceiver} video
 * @property {string[]} relayErrors what TURN relays answered when they refused (e.g. `401 Unauthorized`)
 */

/** How long to wait for ICE gathering before sending what there is. */
const GATHERING_TIMEOUT_MS = 5000;

/**
 * @param {import("./local-media.js").LocalMedia} local
 * @param {import("./ice-servers.js").IceConfig} [ice] TURN relays and the transport policy
 * @returns {Peer}
 */
export function createPeer(local, ice = { iceServers: [], iceTransportPolicy: "all" }) {
  const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle", ...ice });
  /** @type {string[]} */
  const relayErrors = [];
  pc.addEventListener("icecandidateerror", (event) => {
    const error = /** @type {RTCPeerConnectionIceErrorEvent} */ (event);
    if (/^turns?:/.test(error.url ?? "")) relayErrors.push(`${error.errorCode} ${error.errorText}`.trim());
  });
  const streams = [local.stream];
  const audio = local.audio
    ? pc.addTransceiver(local.audio, { direction: "sendrecv", streams })
    : pc.addTransceiver("audio", { direction: "sendrecv", streams });
  const video = local.video
    ? pc.addTransceiver(local.video, { direction: "sendrecv", streams })
    : pc.addTransceiver("video", { direction: "sendrecv", streams });
  preferH264(video);
  return { pc, audio, video, relayErrors };
}

/**
 * Puts H.264 (packetization-mode 1, constrained baseline first) ahead of
 * VP8, which the server forwards without transcoding; other codecs are left
 * out, as the server would refuse them anyway. Retransmission (rtx) stays.
 * @param {RTCRtpTransceiver} transceiver
 */
function preferH264(transceiver) {
  if (typeof transceiver.setCodecPreferences !== "function") return;
  const capabilities = RTCRtpReceiver.getCapabilities?.("video") ?? RTCRtpSender.getCapabilities?.("video");
  if (!capabilities) return;
  /** @param {RTCRtpCodec} codec */
  const rank = (codec) => {
    const mime = codec.mimeType.toLowerCase();
    const fmtp = (codec.sdpFmtpLine ?? "").toLowerCase();
    if (mime === "video/h264" && fmtp.includes("packetization-mode=1")) {
      return fmtp.includes("profile-level-id=42e0") ? 0 : fmtp.includes("profile-level-id=4200") ? 1 : 2;
    }
    if (mime === "video/vp8") return 3;
    if (mime === "video/rtx") return 4;
    return -1;
  };
  const ordered = capabilities.codecs
    .map((codec, index) => ({ codec, index, rank: rank(codec) }))
    .filter((entry) => entry.rank >= 0)
    .sort((a, b) => a.rank - b.rank || a.index - b.index)
    .map((entry) => entry.codec);
  if (!ordered.some((codec) => rank(codec) < 4)) return;
  try {
    transceiver.setCodecPreferences(ordered);
  } catch (err) {
    // A browser that refuses the list keeps its own order; the server copes with VP8 too.
    console.warn("could not set video codec preferences", err);
  }
}

/**
 * Creates and applies the offer, waits until ICE gathering is complete
 * (or {@link GATHERING_TIMEOUT_MS}), and returns the final SDP with all
 * candidates in it.
 * @param {RTCPeerConnection} pc
 * @returns {Promise<string>}
 */
export async function completeOffer(pc) {
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  if (pc.iceGatheringState !== "complete") {
    await new Promise((resolve) => {
      const timer = setTimeout(done, GATHERING_TIMEOUT_MS);
      function done() {
        clearTimeout(timer);
        pc.removeEventListener("icegatheringstatechange", check);
        resolve(undefined);
      }
      function check() {
        if (pc.iceGatheringState === "complete") done();
      }
      pc.addEventListener("icegatheringstatechange", check);
    });
  }
  const sdp = pc.localDescription?.sdp;
  if (!sdp) throw new Error("the browser made no offer");
  return sdp;
}

/**
 * Closes the connection (the local tracks stay open for the next one).
 * @param {Peer} peer
 */
export function closePeer(peer) {
  try {
    peer.pc.close();
  } catch {
    // already closed
  }
}
