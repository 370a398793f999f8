// @ts-check
/**
 * Three people in a room's conference, each in their own Chromium whose
 * camera shows a solid colour and whose microphone plays a tone:
 *
 * | who   | role   | camera | tone   |
 * | ----- | ------ | ------ | ------ |
 * | hana  | host   | red    | 440 Hz |
 * | alice | member | green  | 660 Hz |
 * | bob   | member | blue   | 880 Hz |
 *
 * Whose video a page receives is proven by the main video's colour, and
 * what it hears by the tones in its audio: automatic selection never shows
 * a person themselves; "Watch" shows the chosen person; the host's "Lock"
 * shows everyone the designated person (the designated one keeps the
 * automatic rule) and disables "Watch"; "Designate" moves the lock;
 * "Unlock" gives back each person's own choice. Everyone hears the others'
 * tones and not their own; a muted microphone goes silent. A dropped
 * socket reconnects without reloading the page; joining from a second tab
 * takes the place of the first for good. The page fits a phone.
 */

import assert from "node:assert/strict";
import path from "node:path";
import { after, before, test } from "node:test";

import { DESKTOP, PHONE, collectErrors, pageWidth, registerInUi, screenshotDir } from "./browser.mjs";
import { colourName, launchWithFakeDevices, mainVideoColour, makeFakeMedia, pollUntil, toneLevels } from "./conference-media.mjs";
import { startServer } from "./server.mjs";

// Every server of the test run gets its own free UDP port for media.
process.env.CONFCAST_MEDIA_PORT = "0";

/**
 * @typedef {object} Person
 * @property {string} username
 * @property {string} displayName
 * @property {string} colour
 * @property {number} tone
 * @property {{width: number, height: number}} viewport
 * @property {import("playwright-core").Browser} [browser]
 * @property {import("playwright-core").BrowserContext} [context]
 * @property {import("playwright-core").Page} [page]
 */

/** @type {Person} */
const hana = { username: "hana", displayName: "Hana Host", colour: "red", tone: 440, viewport: DESKTOP };
/** @type {Person} */
const alice = { username: "alice", displayName: "Alice Green", colour: "green", tone: 660, viewport: PHONE };
/** @type {Person} */
const bob = { username: "bob", displayName: "Bob Blue", colour: "blue", tone: 880, viewport: DESKTOP };
const people = [hana, alice, bob];
const TONES = people.map((p) => p.tone);

/** @param {string} username */
const colourOf = (username) => people.find((p) => p.username === username)?.colour ?? "?";

/** @type {import("./server.mjs").RunningServer} */
let server;
/** @type {Awaited<ReturnType<typeof makeFakeMedia>>} */
let media;
/** @type {string} */
let shots;

before(async () => {
  [server, media, shots] = await Promise.all([
    startServer(),
    makeFakeMedia(
      people.map((p) => p.colour),
      TONES,
    ),
    screenshotDir(),
  ]);
  await Promise.all(
    people.map(async (person) => {
      person.browser = await launchWithFakeDevices({ video: media.video(person.colour), audio: media.audio(person.tone) });
    }),
  );
});

after(async () => {
  await Promise.all(people.map((p) => p.browser?.close()));
  await server?.stop();
  await media?.remove();
});

/** @param {Person} person */
function pageOf(person) {
  assert.ok(person.page, `${person.username} has a page`);
  return person.page;
}

/**
 * The page's conference state (data-* on the root element).
 * @param {import("playwright-core").Page} page
 */
function conferenceState(page) {
  return page.evaluate(() => {
    const data = document.documentElement.dataset;
    return {
      state: data.conferenceState ?? "",
      watching: data.watching ?? "",
      mode: data.watchMode ?? "",
      locked: data.videoLocked ?? "",
    };
  });
}

/**
 * Waits until the person's main video shows `expected`'s colour while the
 * page says it receives `expected` in `mode`.
 * @param {Person} person
 * @param {Person} expected
 * @param {string} mode
 */
async function waitUntilWatching(person, expected, mode) {
  const page = pageOf(person);
  await pollUntil(
    async () => {
      const state = await conferenceState(page);
      const colour = colourName(await mainVideoColour(page));
      return { ...state, colour };
    },
    (seen) => seen.watching === expected.username && seen.mode === mode && seen.colour === expected.colour,
    { what: `${person.username} to see ${expected.username} (${expected.colour}, ${mode})` },
  );
}

/**
 * Waits until the person receives someone else's video automatically and
 * the colour on screen is that person's; returns whom.
 * @param {Person} person
 * @param {string[]} [modes] the modes the page may report: the designated
 *   person of a lock follows the automatic rule, but the server reports the
 *   room's mode (`locked`) to them too
 */
async function waitUntilAutoOther(person, modes = ["auto"]) {
  const page = pageOf(person);
  const seen = await pollUntil(
    async () => {
      const before = await conferenceState(page);
      const colour = colourName(await mainVideoColour(page));
      const afterwards = await conferenceState(page);
      return { ...afterwards, colour, stable: before.watching === afterwards.watching };
    },
    (s) =>
      s.stable &&
      s.watching !== "" &&
      s.watching !== person.username &&
      modes.includes(s.mode) &&
      s.colour === colourOf(s.watching) &&
      s.colour !== person.colour,
    { what: `${person.username} to see someone else automatically` },
  );
  return seen.watching;
}

/**
 * The roster section of the conference.
 * @param {import("playwright-core").Page} page
 */
function roster(page) {
  return page.getByRole("region", { name: /^People/ });
}

/**
 * A person's row in the roster.
 * @param {import("playwright-core").Page} page
 * @param {Person} person
 */
function rosterRow(page, person) {
  return roster(page).getByRole("listitem").filter({ hasText: `@${person.username}` });
}

/**
 * Listens to the person's received audio and checks that the others'
 * tones are there and their own is not.
 * @param {import("node:test").TestContext} t
 * @param {Person} person
 * @param {{silent?: Person[]}} [options] people whose tone must be missing too
 */
async function checkAudio(t, person, { silent = [] } = {}) {
  const page = pageOf(person);
  const quiet = new Set([person, ...silent].map((p) => p.tone));
  const levels = await pollUntil(
    () => toneLevels(page, TONES, 2000),
    (l) => TONES.every((hz) => (quiet.has(hz) ? l[hz] < 20 : l[hz] >= 30)),
    { timeout: 30_000, interval: 0, what: `${person.username}'s audio to hold ${TONES.filter((hz) => !quiet.has(hz))} Hz only` },
  );
  t.diagnostic(`${person.username} hears (dB above the floor): ${JSON.stringify(levels)}`);
}

test("three people: automatic video, watch, lock, designate, unlock, audio mix, reconnect, second tab", { timeout: 240_000 }, async (t) => {
  t.diagnostic(`screenshots in ${shots}`);
  const started = Date.now();
  /** @type {string[][]} */
  const errors = [];
  for (const person of people) {
    assert.ok(person.browser);
    person.context = await person.browser.newContext({ baseURL: server.baseUrl, viewport: person.viewport });
    person.context.setDefaultTimeout(15_000);
    person.page = await person.context.newPage();
    errors.push(collectErrors(person.page, person.username));
  }
  const [h, a, b] = [pageOf(hana), pageOf(alice), pageOf(bob)];

  // Alice's sockets are kept where the test can drop them (to test reconnecting).
  await a.addInitScript(() => {
    const Native = window.WebSocket;
    /** @type {WebSocket[]} */
    const sockets = [];
    /** @type {any} */ (window).__sockets = sockets;
    window.WebSocket = class extends Native {
      /** @param {ConstructorParameters<typeof WebSocket>} args */
      constructor(...args) {
        super(...args);
        sockets.push(this);
      }
    };
  });

  try {
    // Everyone registers; the host creates a room and an invite link, which the others accept.
    await Promise.all(
      people.map(async (person) => {
        const page = pageOf(person);
        await registerInUi(page, { username: person.username, displayName: person.displayName, password: `${person.username}-secret-1` });
        await page.getByRole("heading", { name: "Home", level: 1 }).waitFor();
      }),
    );
    await h.getByLabel("Room title").fill("Colour call");
    await h.getByRole("button", { name: "Create room" }).click();
    await h.getByRole("heading", { name: "Colour call", level: 1 }).waitFor();
    const roomPath = new URL(h.url()).pathname;
    const roomId = roomPath.split("/").pop();
    const link = await h.request.post(`/api/v1/rooms/${roomId}/invite-links`, { data: {} });
    assert.equal(link.status(), 201, await link.text());
    const { token } = await link.json();
    for (const page of [a, b]) {
      const accepted = await page.request.post(`/api/v1/invite-links/${encodeURIComponent(token)}/accept`);
      assert.ok(accepted.ok(), await accepted.text());
      await page.goto(roomPath);
      await page.getByRole("heading", { name: "Colour call", level: 1 }).waitFor();
    }
    await a.evaluate(() => {
      /** @type {any} */ (window).__sameDocument = true;
    });

    // Before joining: a button, nothing live yet.
    const joinHost = h.getByRole("button", { name: "Join conference", exact: true });
    await joinHost.waitFor();
    assert.equal((await conferenceState(h)).state, "idle");
    await h.screenshot({ path: path.join(shots, "conference-before-join-desktop.png"), fullPage: true });

    // The host joins alone: with nobody else publishing, they get their own video.
    await joinHost.click();
    await h.waitForFunction(() => document.documentElement.dataset.conferenceState === "connected", null, { timeout: 30_000 });
    await waitUntilWatching(hana, hana, "auto");

    // The others join.
    await a.getByRole("button", { name: "Join conference", exact: true }).click();
    await b.getByRole("button", { name: "Join conference", exact: true }).click();
    for (const page of [a, b]) {
      await page.waitForFunction(() => document.documentElement.dataset.conferenceState === "connected", null, { timeout: 30_000 });
    }
    for (const page of [h, a, b]) {
      await roster(page).getByRole("heading", { name: "People (3)" }).waitFor();
    }
    t.diagnostic(`all three connected after ${Date.now() - started} ms`);

    // Automatic: everyone sees someone else, and the colour matches the label.
    for (const person of people) {
      const whom = await waitUntilAutoOther(person);
      t.diagnostic(`${person.username} automatically sees ${whom}`);
    }
    // The main video is labelled with whose it is and why.
    await h.locator("figcaption.video-label").filter({ hasText: "automatic" }).first().waitFor();

    // Talking indicators come from the server (everyone's tone counts as speech).
    await rosterRow(h, alice).filter({ hasText: "Talking" }).waitFor({ timeout: 20_000 });

    // Everyone hears the two others and not themselves.
    await Promise.all(people.map((person) => checkAudio(t, person)));

    // Alice chooses to watch Bob.
    const aliceWatchesBob = rosterRow(a, bob).getByRole("button", { name: "Watch", exact: true });
    await aliceWatchesBob.click();
    await waitUntilWatching(alice, bob, "chosen");
    assert.equal(await aliceWatchesBob.getAttribute("aria-pressed"), "true");
    await a.locator("figcaption.video-label").filter({ hasText: "Bob Blue" }).filter({ hasText: "your choice" }).waitFor();

    // The host locks everyone to Bob: the host and Alice see Bob; Bob still
    // sees someone else; Alice's Watch buttons are disabled.
    await h.getByLabel("Show everyone").selectOption(bob.username);
    await h.getByRole("button", { name: "Lock", exact: true }).click();
    await waitUntilWatching(hana, bob, "locked");
    await waitUntilWatching(alice, bob, "locked");
    const bobSees = await waitUntilAutoOther(bob, ["auto", "locked"]);
    t.diagnostic(`locked to bob: bob sees ${bobSees}`);
    await a.waitForFunction(() => document.documentElement.dataset.videoLocked === "true");
    for (const row of [rosterRow(a, hana), rosterRow(a, bob)]) {
      assert.equal(await row.getByRole("button", { name: "Watch", exact: true }).isDisabled(), true);
    }
    assert.equal(await roster(a).getByRole("button", { name: "Automatic", exact: true }).isDisabled(), true);
    await roster(a).getByText("Locked", { exact: true }).waitFor();
    await a.screenshot({ path: path.join(shots, "conference-locked-phone.png"), fullPage: true });
    await h.screenshot({ path: path.join(shots, "conference-locked-host-desktop.png"), fullPage: true });
    const width = await pageWidth(a);
    assert.ok(width.scrollWidth <= PHONE.width, `the conference scrolls sideways at 375 px: ${JSON.stringify(width)}`);
    const videoBox = await a.locator("video.main-video").boundingBox();
    assert.ok(videoBox && videoBox.x >= 0 && videoBox.x + videoBox.width <= PHONE.width, `main video fits the phone: ${JSON.stringify(videoBox)}`);

    // The host designates Alice instead: the others see green, Alice follows the automatic rule.
    await h.getByLabel("Show everyone").selectOption(alice.username);
    await h.getByRole("button", { name: "Designate", exact: true }).click();
    await waitUntilWatching(hana, alice, "locked");
    await waitUntilWatching(bob, alice, "locked");
    const aliceSees = await waitUntilAutoOther(alice, ["auto", "locked"]);
    t.diagnostic(`locked to alice: alice sees ${aliceSees}`);

    // Unlocking gives Alice her own choice back.
    await h.getByRole("button", { name: "Unlock", exact: true }).click();
    await waitUntilWatching(alice, bob, "chosen");
    await a.waitForFunction(() => document.documentElement.dataset.videoLocked === "false");
    assert.equal(await aliceWatchesBob.isDisabled(), false);
    await waitUntilAutoOther(hana);

    // Alice mutes her microphone: shown to the others, and her tone leaves their audio.
    await a.getByRole("button", { name: "Mute microphone", exact: true }).click();
    await a.getByRole("button", { name: "Unmute microphone", exact: true }).waitFor();
    await rosterRow(h, alice).filter({ hasText: "Microphone off" }).waitFor();
    await checkAudio(t, hana, { silent: [alice] });
    await a.getByRole("button", { name: "Unmute microphone", exact: true }).click();
    await rosterRow(h, alice).filter({ hasText: "Microphone off" }).waitFor({ state: "detached" });

    // Bob turns his camera off and on: the others' rosters say so.
    await b.getByRole("button", { name: "Camera off", exact: true }).click();
    await rosterRow(h, bob).filter({ hasText: "Camera off" }).waitFor();
    await b.getByRole("button", { name: "Camera on", exact: true }).click();
    await rosterRow(h, bob).filter({ hasText: "Camera off" }).waitFor({ state: "detached" });

    // Alice's socket drops: the page reconnects by itself (no reload) and
    // keeps her choice.
    await a.evaluate(() => {
      /** @type {WebSocket[]} */
      const sockets = /** @type {any} */ (window).__sockets;
      sockets[sockets.length - 1].close(4000, "test drops the socket");
    });
    await a.waitForFunction(() => document.documentElement.dataset.conferenceState === "reconnecting");
    await a.waitForFunction(() => document.documentElement.dataset.conferenceState === "connected", null, { timeout: 30_000 });
    await waitUntilWatching(alice, bob, "chosen");
    assert.equal(await a.evaluate(() => /** @type {any} */ (window).__sameDocument), true, "the page was not reloaded");
    await checkAudio(t, alice);
    await a.screenshot({ path: path.join(shots, "conference-watching-phone.png"), fullPage: true });
    await b.screenshot({ path: path.join(shots, "conference-member-desktop.png"), fullPage: true });

    // Bob leaves: the others' rosters shrink, his page offers to join again.
    await b.getByRole("button", { name: "Leave", exact: true }).click();
    await b.waitForFunction(() => document.documentElement.dataset.conferenceState === "left");
    await b.getByRole("button", { name: "Join conference", exact: true }).waitFor();
    await roster(h).getByRole("heading", { name: "People (2)" }).waitFor();
    await rosterRow(h, bob).waitFor({ state: "detached" });

    // Bob comes back, then joins from a second tab too: the first one
    // steps aside for good (no reconnecting back and forth).
    await b.getByRole("button", { name: "Join conference", exact: true }).click();
    await b.waitForFunction(() => document.documentElement.dataset.conferenceState === "connected", null, { timeout: 30_000 });
    assert.ok(bob.context);
    const b2 = await bob.context.newPage();
    errors.push(collectErrors(b2, "bob-2"));
    await b2.goto(roomPath);
    await b2.getByRole("button", { name: "Join conference", exact: true }).click();
    await b2.waitForFunction(() => document.documentElement.dataset.conferenceState === "connected", null, { timeout: 30_000 });
    await b.waitForFunction(() => document.documentElement.dataset.conferenceState === "failed");
    await b.getByRole("region", { name: "Conference" }).getByText(/from somewhere else/).waitFor();
    await b.screenshot({ path: path.join(shots, "conference-replaced-desktop.png") });
    await b.waitForTimeout(2000);
    assert.equal((await conferenceState(b)).state, "failed", "the replaced tab stays out");
    assert.equal((await conferenceState(b2)).state, "connected", "the new tab stays in");
    await roster(h).getByRole("heading", { name: "People (3)" }).waitFor();
    await waitUntilAutoOther({ ...bob, page: b2 });

    assert.deepEqual(errors.flat(), [], "no script errors in the pages");
    t.diagnostic(`done in ${Date.now() - started} ms`);
  } catch (err) {
    for (const person of people) {
      await person.page?.screenshot({ path: path.join(shots, `failure-${person.username}.png`), fullPage: true }).catch(() => {});
    }
    t.diagnostic(`server output:\n${server.logs().slice(-6000)}`);
    throw err;
  } finally {
    await Promise.all(people.map((p) => p.context?.close()));
  }
});
