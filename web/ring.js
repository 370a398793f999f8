// @ts-check
/**
 * A short ring tone for incoming invitations, made with WebAudio (no sound
 * file). Browsers only let a page play sound after the person has
 * interacted with it, so the audio context is created on the first click
 * or key press; before that, ringing is silent (the visible notice is what
 * counts) and a phone may still vibrate.
 */

/** @type {AudioContext | null} */
let context = null;

function unlock() {
  if (context) return;
  try {
    context = new AudioContext();
  } catch {
    context = null;
  }
}

/** Prepares sound on the first interaction with the page. */
export function enableRingTone() {
  const options = { once: true, capture: true };
  window.addEventListener("pointerdown", unlock, options);
  window.addEventListener("keydown", unlock, options);
}

/**
 * Plays one ring: two short bursts of a 400 Hz + 450 Hz double tone
 * (about 1.2 s), quietly.
 */
export function ring() {
  navigator.vibrate?.([300, 150, 300]);
  const ctx = context;
  if (!ctx) return;
  if (ctx.state === "suspended") void ctx.resume().catch(() => {});
  const start = ctx.currentTime + 0.05;
  const gain = ctx.createGain();
  gain.gain.value = 0;
  gain.connect(ctx.destination);
  for (const offset of [0, 0.6]) {
    const on = start + offset;
    gain.gain.setValueAtTime(0, on);
    gain.gain.linearRampToValueAtTime(0.12, on + 0.02);
    gain.gain.setValueAtTime(0.12, on + 0.38);
    gain.gain.linearRampToValueAtTime(0, on + 0.4);
  }
  for (const frequency of [400, 450]) {
    const osc = ctx.createOscillator();
    osc.frequency.value = frequency;
    osc.connect(gain);
    osc.start(start);
    osc.stop(start + 1.05);
  }
}
