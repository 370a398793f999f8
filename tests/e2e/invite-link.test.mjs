// @ts-check
/**
 * A host creates a room, makes an invite link, and someone without an
 * account opens it: they are sent to register, come back to the join page,
 * join, and land in the room. Also: an unknown link says so.
 */

import assert from "node:assert/strict";
import path from "node:path";
import { after, before, test } from "node:test";

import { DESKTOP, PHONE, collectErrors, launchBrowser, pageWidth, registerInUi, screenshotDir } from "./browser.mjs";
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

test("an invite link brings a new person into the room", { timeout: 120_000 }, async (t) => {
  t.diagnostic(`screenshots in ${shots}`);
  const host = await browser.newContext({ baseURL: server.baseUrl, viewport: DESKTOP });
  const guest = await browser.newContext({ baseURL: server.baseUrl, viewport: PHONE });
  host.setDefaultTimeout(10_000);
  guest.setDefaultTimeout(10_000);
  const h = await host.newPage();
  const g = await guest.newPage();
  const errors = [collectErrors(h, "host"), collectErrors(g, "guest")];

  try {
    await registerInUi(h, { username: "hana", displayName: "Hana Host", password: "hana-secret-1" });
    await h.getByRole("heading", { name: "Home", level: 1 }).waitFor();

    // Create a room; the new room's page opens.
    await h.getByLabel("Room title").fill("Friday <b>quiz</b> night");
    await h.getByRole("button", { name: "Create room" }).click();
    await h.getByRole("heading", { name: "Friday <b>quiz</b> night", level: 1 }).waitFor();
    const roomPath = new URL(h.url()).pathname;
    assert.match(roomPath, /^\/rooms\/[^/]+$/);

    // The host makes an invite link; the full URL is shown.
    await h.getByRole("button", { name: "Create invite link" }).click();
    const linkField = h.getByRole("textbox", { name: "Invite link" });
    await linkField.waitFor();
    const link = await linkField.inputValue();
    assert.ok(link.startsWith(`${server.baseUrl}/join/`), `invite link is a full URL: ${link}`);
    await h.screenshot({ path: path.join(shots, "room-host-link-desktop.png"), fullPage: true });

    // A person without an account opens it and is asked to log in or register.
    await g.goto(link);
    await g.getByRole("heading", { name: "Join a room" }).waitFor();
    assert.equal(await g.getByRole("button", { name: "Join room" }).count(), 0);
    await g.screenshot({ path: path.join(shots, "join-guest-phone.png"), fullPage: true });
    await g.getByRole("link", { name: "Create an account" }).click();
    await g.getByRole("heading", { name: "Create an account" }).waitFor();

    // Registering first shows the server's refusal, then works and comes back.
    await g.getByLabel("Username").fill("hana");
    await g.getByLabel("Display name").fill("Gus Guest");
    await g.getByLabel("Password").fill("gus-secret-1");
    await g.getByRole("button", { name: "Register", exact: true }).click();
    await g.getByRole("alert").filter({ hasText: /choose another username/ }).waitFor();
    await g.screenshot({ path: path.join(shots, "register-taken-phone.png"), fullPage: true });
    await g.getByLabel("Username").fill("gus");
    await g.getByRole("button", { name: "Register", exact: true }).click();
    await g.getByRole("button", { name: "Join room" }).click();

    await g.getByRole("heading", { name: "Friday <b>quiz</b> night", level: 1 }).waitFor();
    assert.equal(new URL(g.url()).pathname, roomPath);
    await g.getByRole("region", { name: "Members" }).getByText("Gus Guest", { exact: true }).waitFor();
    const width = await pageWidth(g);
    assert.ok(width.scrollWidth <= PHONE.width, `room page scrolls sideways at 375 px: ${JSON.stringify(width)}`);

    // Back home, the room is in the guest's list.
    await g.getByRole("link", { name: "Home" }).first().click();
    await g.getByRole("region", { name: "Your rooms" }).getByRole("link", { name: "Friday <b>quiz</b> night" }).waitFor();

    // An unknown link says so.
    await g.goto("/join/not-a-real-token");
    await g.getByRole("button", { name: "Join room" }).click();
    await g.getByRole("alert").filter({ hasText: /not valid/ }).waitFor();

    // Logging out leaves a logged-out page, and home then asks to log in.
    await g.getByRole("button", { name: "Log out" }).click();
    await g.getByRole("heading", { name: "Log in", level: 1 }).waitFor();
    await g.goto("/");
    await g.getByRole("heading", { name: "Log in", level: 1 }).waitFor();
    await g.getByLabel("Username").fill("gus");
    await g.getByLabel("Password").fill("wrong-password");
    await g.getByRole("button", { name: "Log in", exact: true }).click();
    await g.getByRole("alert").filter({ hasText: /\S/ }).waitFor();
    await g.getByLabel("Password").fill("gus-secret-1");
    await g.getByRole("button", { name: "Log in", exact: true }).click();
    await g.getByRole("heading", { name: "Home", level: 1 }).waitFor();

    assert.deepEqual(errors.flat(), [], "no script errors in the pages");
  } catch (err) {
    await h.screenshot({ path: path.join(shots, "failure-host.png"), fullPage: true }).catch(() => {});
    await g.screenshot({ path: path.join(shots, "failure-guest.png"), fullPage: true }).catch(() => {});
    t.diagnostic(`server output:\n${server.logs().slice(-4000)}`);
    throw err;
  } finally {
    await host.close();
    await guest.close();
  }
});
