// @ts-check
/**
 * Small decorative SVG icons of the conference view (hidden from screen
 * readers: the text next to them says the same).
 */

const SVG = "http://www.w3.org/2000/svg";

/**
 * @param {string} name class suffix
 * @param {string} d the path
 * @param {number} [size]
 * @returns {SVGSVGElement}
 */
function icon(name, d, size = 16) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", String(size));
  svg.setAttribute("height", String(size));
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.classList.add("icon", `icon-${name}`);
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", d);
  path.setAttribute("fill", "currentColor");
  svg.append(path);
  return svg;
}

/** A padlock. */
export function lockIcon() {
  return icon(
    "lock",
    "M12 2a5 5 0 0 0-5 5v3H6a2 2 0 0 0-2 2v8a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2v-8a2 2 0 0 0-2-2h-1V7a5 5 0 0 0-5-5zm-3 8V7a3 3 0 0 1 6 0v3z",
  );
}

/** A microphone with a slash. */
export function micOffIcon() {
  return icon(
    "mic-off",
    "M3.3 2 2 3.3l6 6V11a4 4 0 0 0 6.2 3.4l1.5 1.5A6 6 0 0 1 6 11H4a8 8 0 0 0 7 7.9V22h2v-3.1a8 8 0 0 0 4.1-1.6l3.6 3.7 1.3-1.3zM16 11V5a4 4 0 0 0-7.7-1.5L16 11.2zm2 0h2a8 8 0 0 1-.9 3.7l-1.5-1.5c.3-.7.4-1.4.4-2.2z",
  );
}

/** A camera with a slash. */
export function cameraOffIcon() {
  return icon(
    "camera-off",
    "M3.3 2 2 3.3 4.7 6H4a2 2 0 0 0-2 2v8a2 2 0 0 0 2 2h10c.4 0 .8-.1 1.1-.3l5.6 5.6L22 22zM22 7l-5 3.5V8a2 2 0 0 0-2-2h-5.2L22 18.2z",
  );
}
