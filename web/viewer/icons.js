// @ts-check
/**
 * Decorative SVG icons of the viewer pages (hidden from screen readers;
 * the text next to them says what they mean).
 */

const SVG = "http://www.w3.org/2000/svg";

/**
 * @param {string} name a class for styling
 * @param {string} d the path
 * @param {number} [size]
 * @returns {SVGSVGElement}
 */
function icon(name, d, size = 20) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", String(size));
  svg.setAttribute("height", String(size));
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.classList.add("viewer-icon", name);
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", d);
  path.setAttribute("fill", "currentColor");
  svg.append(path);
  return svg;
}

/** A loudspeaker with a cross: the sound is off. */
export function mutedIcon() {
  return icon(
    "icon-muted",
    "M3 9v6h4l5 5V4L7 9H3zm13.6 3 2.7-2.7-1.4-1.4-2.7 2.7-2.7-2.7-1.4 1.4 2.7 2.7-2.7 2.7 1.4 1.4 2.7-2.7 2.7 2.7 1.4-1.4-2.7-2.7z",
  );
}

/** A play triangle. */
export function playIcon() {
  return icon("icon-play", "M8 5v14l11-7z", 40);
}

/** An old television: nothing on air. */
export function tvIcon() {
  return icon(
    "icon-tv",
    "M21 6h-7.6l3.3-3.3-.7-.7L12 5.6 8 2l-.7.7L10.6 6H3a2 2 0 0 0-2 2v11a2 2 0 0 0 2 2h18a2 2 0 0 0 2-2V8a2 2 0 0 0-2-2zm0 13H3V8h18v11z",
    48,
  );
}
