// @ts-check
/**
 * Two people in two browsers: both register in the UI, one finds the other
 * by username prefix and invites them, the other (home page already open)
 * is rung live, accepts, and finds the room in their list. Along the way:
 * a hostile display name shows verbatim and runs nothing, and the home page
 * does not scroll sideways at phone width.
 */

import assert from "node:assert/strict";
import path from "node:path";
import { after, before, test } from "node:test";

import {
  DESKTOP,
  PHONE,
  collectErrors,
  launchBrowser,
  pageWidth,
  registerInUi,
  screenshotDir,
  waitForEventStream,
} from "./browser.mjs";
import { startServer } from "./server.mjs";

/** @type {import("./server.mjs").RunningServer} */
let server;
/** @type {import("playwright-core").Browser} */
let browser;
/** @type {string} */
let shots;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  shots = await screenshotDir();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const HOSTILE_NAME = `<img src=x onerror="window.__xss=1">Zoë`;

test("invite by search rings the invitee live; accepting adds the room", { timeout: 120_000 }, async (t) => {
  t.diagnostic(`screenshots in ${shots}`);
  const contextA = await browser.newContext({ baseURL: server.baseUrl, viewport: DESKTOP });
  const contextB = await browser.newContext({ baseURL: server.baseUrl, viewport: PHONE });
  contextA.setDefaultTimeout(10_000);
  contextB.setDefaultTimeout(10_000);
  const a = await contextA.newPage();
  const b = await contextB.newPage();
  const errors = [collectErrors(a, "A"), collectErrors(b, "B")];

  try {
    // A registers and lands on the home page.
    await registerInUi(a, { username: "alice", displayName: "Alice Liddell", password: "alice-secret-1" });
    await a.getByRole("heading", { name: "Home", level: 1 }).waitFor();
    assert.equal(new URL(a.url()).pathname, "/");
    await a.getByRole("navigation", { name: "Account" }).getByText("Alice Liddell", { exact: true }).waitFor();
    /** @type {{rooms: import("../../web/api.js").RoomSummary[]}} */
    const meA = await a.evaluate(() => fetch("/api/v1/me").then((r) => r.json()));
    const personalA = meA.rooms.find((r) => r.personal && r.role === "host");
    assert.ok(personalA, "registration made A's personal room");
    await a.getByRole("region", { name: "Your rooms" }).getByRole("link", { name: personalA.title }).waitFor();

    // B registers (second browser, phone size) with a display name full of markup.
    await registerInUi(b, { username: "zoe.b", displayName: HOSTILE_NAME, password: "zoe-secret-22" });
    await b.getByRole("heading", { name: "Home", level: 1 }).waitFor();
    await b.getByRole("navigation", { name: "Account" }).getByText(HOSTILE_NAME, { exact: true }).waitFor();
    await b.getByRole("region", { name: "Invitations" }).getByText("No pending invitations.").waitFor();
    await waitForEventStream(b);
    // Marks this document: a reload would lose it.
    await b.evaluate(() => {
      /** @type {any} */ (window).__sameDocument = true;
    });

    // A finds B by username prefix; the name shows verbatim.
    await a.getByLabel("Search people").fill("zo");
    const rowB = a.getByRole("list", { name: "People found" }).getByRole("listitem").filter({ hasText: "@zoe.b" });
    await rowB.getByText(HOSTILE_NAME, { exact: true }).waitFor();
    assert.equal(await a.locator(".result-list img").count(), 0, "no element made from the display name");
    await a.screenshot({ path: path.join(shots, "home-a-search-desktop.png"), fullPage: true });
    await rowB.getByRole("button", { name: "Invite", exact: true }).click();
    await rowB.getByText(`Invited to “${personalA.title}”`).waitFor();

    // B is rung live, without a reload.
    const ringing = b.getByRole("alert").filter({ hasText: "Ringing" });
    await ringing.waitFor();
    assert.match((await ringing.textContent()) ?? "", /Alice Liddell/);
    assert.match((await ringing.textContent()) ?? "", new RegExp(escapeRegExp(personalA.title)));
    assert.equal(await b.evaluate(() => /** @type {any} */ (window).__sameDocument), true, "B's page was not reloaded");
    const invitation = b.getByRole("region", { name: "Invitations" }).getByRole("listitem").filter({ hasText: "Alice Liddell" });
    await invitation.getByRole("button", { name: "Decline", exact: true }).waitFor();
    await b.screenshot({ path: path.join(shots, "home-b-ringing-phone.png"), fullPage: true });

    const widthRinging = await pageWidth(b);
    assert.ok(widthRinging.scrollWidth <= PHONE.width, `home page scrolls sideways at 375 px: ${JSON.stringify(widthRinging)}`);

    // B accepts; A's room appears in B's room list, and A hears of it.
    await invitation.getByRole("button", { name: "Accept", exact: true }).click();
    const roomsB = b.getByRole("region", { name: "Your rooms" });
    const roomLink = roomsB.getByRole("link", { name: personalA.title, exact: true });
    await roomLink.waitFor();
    await roomsB
      .getByRole("listitem")
      .filter({ has: b.getByRole("link", { name: personalA.title, exact: true }) })
      .getByText("Member", { exact: true })
      .waitFor();
    await b.getByRole("region", { name: "Invitations" }).getByText("No pending invitations.").waitFor();
    assert.equal(await ringing.count(), 0, "the ringing notice is gone once answered");
    await rowB.getByText(/accepted your invitation/).waitFor();
    await b.screenshot({ path: path.join(shots, "home-b-accepted-phone.png"), fullPage: true });

    // B opens the room: A is host, B a member who may join the conference.
    await roomLink.click();
    await b.getByRole("heading", { name: personalA.title, level: 1 }).waitFor();
    const membersB = b.getByRole("region", { name: "Members" });
    await membersB.getByRole("listitem").filter({ hasText: "@alice" }).getByText("Host", { exact: true }).waitFor();
    await membersB.getByText(HOSTILE_NAME, { exact: true }).waitFor();
    const conference = b.getByRole("region", { name: "Conference" });
    await conference.getByRole("button", { name: "Join conference" }).waitFor();
    assert.equal(await b.getByRole("button", { name: "Create invite link" }).count(), 0, "members cannot make links");
    const widthRoom = await pageWidth(b);
    assert.ok(widthRoom.scrollWidth <= PHONE.width, `room page scrolls sideways at 375 px: ${JSON.stringify(widthRoom)}`);
    await b.screenshot({ path: path.join(shots, "room-b-phone.png"), fullPage: true });

    // A's room page shows B, with the host's controls.
    await a.getByRole("link", { name: personalA.title, exact: true }).click();
    await a.getByRole("heading", { name: personalA.title, level: 1 }).waitFor();
    const memberRow = a.getByRole("region", { name: "Members" }).getByRole("listitem").filter({ hasText: "@zoe.b" });
    await memberRow.getByText(HOSTILE_NAME, { exact: true }).waitFor();
    await memberRow.getByRole("button", { name: "Make admin" }).click();
    await memberRow.getByText("Admin", { exact: true }).waitFor();
    await a.screenshot({ path: path.join(shots, "room-a-desktop.png"), fullPage: true });

    // The home page at phone size does not scroll sideways either for A.
    await a.setViewportSize(PHONE);
    await a.getByRole("link", { name: "Home" }).first().click();
    await a.getByRole("heading", { name: "Home", level: 1 }).waitFor();
    await a.getByLabel("Search people").fill("zo");
    await rowB.waitFor();
    const widthA = await pageWidth(a);
    assert.ok(widthA.scrollWidth <= PHONE.width, `home page scrolls sideways at 375 px: ${JSON.stringify(widthA)}`);
    await a.screenshot({ path: path.join(shots, "home-a-phone.png"), fullPage: true });

    for (const page of [a, b]) {
      assert.equal(await page.evaluate(() => /** @type {any} */ (window).__xss), undefined, "markup in a name ran");
    }
    assert.deepEqual(errors.flat(), [], "no script errors in the pages");
  } catch (err) {
    await a.screenshot({ path: path.join(shots, "failure-a.png"), fullPage: true }).catch(() => {});
    await b.screenshot({ path: path.join(shots, "failure-b.png"), fullPage: true }).catch(() => {});
    t.diagnostic(`server output:\n${server.logs().slice(-4000)}`);
    throw err;
  } finally {
    await contextA.close();
    await contextB.close();
  }
});

/** @param {string} text */
function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
