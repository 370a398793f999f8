// @ts-check
/**
 * The user's own camera and microphone. The stream is opened once per
 * conference and kept across reconnects; muting disables a track (it keeps
 * sending silence or black, so the peer connection never changes).
 */

/**
 * @typedef {object} LocalMedia
 * @property {MediaStream} stream may have no tracks at all (nothing was allowed or found)
 * @property {MediaStreamTrack | null} audio
 * @property {MediaStreamTrack | null} video
 * @property {string} problem why a device is missing, or "" when both are there
 */

/**
 * Asks for camera and microphone. If that fails, tries each alone, so a
 * person without a camera (or who refused it) can still take part.
 * @returns {Promise<LocalMedia>}
 */
export async function openLocalMedia() {
  const devices = navigator.mediaDevices;
  if (!devices || typeof devices.getUserMedia !== "function") {
    return only(new MediaStream(), "This browser gives no access to a camera or microphone here (a secure https address is needed).");
  }
  /** @type {unknown} */
  let firstError = null;
  for (const constraints of [{ audio: true, video: true }, { audio: true }, { video: true }]) {
    try {
      const stream = await devices.getUserMedia(constraints);
      const missing = constraints.video ? (constraints.audio ? "" : "microphone") : "camera";
      return only(stream, missing ? deviceProblem(firstError, missing) : "");
    } catch (err) {
      if (firstError === null) firstError = err;
      // A refusal covers both devices: asking again for one would only fail again.
      if (err instanceof DOMException && (err.name === "NotAllowedError" || err.name === "SecurityError")) break;
    }
  }
  return only(new MediaStream(), deviceProblem(firstError, "camera and microphone"));
}

/**
 * @param {MediaStream} stream
 * @param {string} problem
 * @returns {LocalMedia}
 */
function only(stream, problem) {
  return {
    stream,
    audio: stream.getAudioTracks()[0] ?? null,
    video: stream.getVideoTracks()[0] ?? null,
    problem,
  };
}

/**
 * A sentence for a getUserMedia failure.
 * @param {unknown} err
 * @param {string} missing the device(s) that could not be opened
 */
function deviceProblem(err, missing) {
  if (err instanceof DOMException) {
    switch (err.name) {
      case "NotAllowedError":
      case "SecurityError":
        return `Access to the ${missing} was refused, so the others cannot see or hear you. Allow it in the browser's site settings and join again.`;
      case "NotFoundError":
      case "OverconstrainedError":
        return `No ${missing} was found; you take part without it.`;
      case "NotReadableError":
      case "AbortError":
        return `The ${missing} is in use by another program or could not be started; you take part without it.`;
      default:
        break;
    }
  }
  return `The ${missing} could not be opened; you take part without it.`;
}

/**
 * Stops every track (the camera light goes off).
 * @param {MediaStream} stream
 */
export function stopLocalMedia(stream) {
  for (const track of stream.getTracks()) track.stop();
}
