// @ts-check
/**
 * Launches Debian's Chromium through playwright-core (no browser is
 * downloaded), and the steps shared by the browser tests.
 */

import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export const PHONE = { width: 375, height: 740 };
export const DESKTOP = { width: 1280, height: 860 };

/** @returns {Promise<import("playwright-core").Browser>} */
export function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
}

/**
 * A browser for anonymous viewers of the watch page: sound may start
 * without a click, and WebRTC may use loopback. Fake devices only for the
 * one permission Chromium wants before it offers loopback candidates;
 * nothing captures.
 * @returns {Promise<import("playwright-core").Browser>}
 */
export function launchViewerBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      ...CHROMIUM_ARGS,
      "--autoplay-policy=no-user-gesture-required",
      "--allow-loopback-in-peer-connection",
      "--use-fake-ui-for-media-stream",
      "--use-fake-device-for-media-stream",
    ],
  });
}

/**
 * The folder for screenshots: CONFCAST_E2E_SCREENSHOTS, or a new temporary one.
 * @returns {Promise<string>}
 */
export async function screenshotDir() {
  return process.env.CONFCAST_E2E_SCREENSHOTS || (await mkdtemp(path.join(tmpdir(), "confcast-e2e-shots-")));
}

/**
 * Collects the page's uncaught errors and console errors, except the
 * browser's own "Failed to load resource" lines for expected 4xx answers.
 * @param {import("playwright-core").Page} page
 * @param {string} name
 * @returns {string[]} filled as errors happen
 */
export function collectErrors(page, name) {
  /** @type {string[]} */
  const errors = [];
  page.on("pageerror", (err) => errors.push(`${name}: uncaught ${err.message}`));
  page.on("console", (message) => {
    if (message.type() !== "error") return;
    if (message.text().startsWith("Failed to load resource")) return;
    errors.push(`${name}: console error ${message.text()}`);
  });
  return errors;
}

/**
 * Whether the page is wider than the viewport (horizontal scrolling).
 * @param {import("playwright-core").Page} page
 * @returns {Promise<{scrollWidth: number, clientWidth: number}>}
 */
export function pageWidth(page) {
  return page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    clientWidth: document.documentElement.clientWidth,
  }));
}

/**
 * Registers through the UI and waits for the home page.
 * @param {import("playwright-core").Page} page
 * @param {{username: string, displayName: string, password: string}} user
 */
export async function registerInUi(page, user) {
  await page.goto("/register");
  await page.getByLabel("Username").fill(user.username);
  await page.getByLabel("Display name").fill(user.displayName);
  await page.getByLabel("Password").fill(user.password);
  await page.getByRole("button", { name: "Register", exact: true }).click();
}

/**
 * Waits until the page's live event stream is connected, so that events
 * sent from now on reach it.
 * @param {import("playwright-core").Page} page
 */
export async function waitForEventStream(page) {
  await page.waitForFunction(() => document.documentElement.dataset.events === "open");
}
