// @ts-check
/**
 * Starting a live video the way browsers allow: with sound if the page may,
 * else muted (the page then offers to unmute), else not at all (the viewer
 * starts it with the video's controls).
 */

/**
 * @param {HTMLVideoElement} video
 * @param {() => boolean} current false once the player was stopped or restarted meanwhile
 * @param {() => void} onRefused not even muted playback was allowed
 */
export async function autoplay(video, current, onRefused) {
  try {
    await video.play();
    return;
  } catch (err) {
    if (!current()) return;
    if (!(err instanceof DOMException && err.name === "NotAllowedError")) return;
  }
  video.muted = true;
  try {
    await video.play();
  } catch {
    if (current()) onRefused();
  }
}
