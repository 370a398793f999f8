// @ts-check
/**
 * Managing a room from its page: the host renames it and invites by
 * username; the invitee declines, is invited again and accepts, is made
 * admin and back, and leaves; finally the host deletes the room.
 */

import assert from "node:assert/strict";
import path from "node:path";
import { after, before, test } from "node:test";

import { DESKTOP, PHONE, collectErrors, launchBrowser, registerInUi, screenshotDir, waitForEventStream } from "./browser.mjs";
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

test("rename, invite by username, decline, accept, roles, leave, delete", { timeout: 120_000 }, async (t) => {
  t.diagnostic(`screenshots in ${shots}`);
  const hostContext = await browser.newContext({ baseURL: server.baseUrl, viewport: DESKTOP });
  const memberContext = await browser.newContext({ baseURL: server.baseUrl, viewport: PHONE });
  hostContext.setDefaultTimeout(10_000);
  memberContext.setDefaultTimeout(10_000);
  const h = await hostContext.newPage();
  const m = await memberContext.newPage();
  const errors = [collectErrors(h, "host"), collectErrors(m, "member")];
  // Confirmation dialogs (leave, delete) are answered yes.
  h.on("dialog", (dialog) => void dialog.accept());
  m.on("dialog", (dialog) => void dialog.accept());

  try {
    await registerInUi(m, { username: "moe", displayName: "Mo Member", password: "mo-secret-12" });
    await m.getByRole("heading", { name: "Home", level: 1 }).waitFor();
    await waitForEventStream(m);

    await registerInUi(h, { username: "hal", displayName: "Hal Host", password: "hal-secret-12" });
    await h.getByLabel("Room title").fill("Draft title");
    await h.getByRole("button", { name: "Create room" }).click();
    await h.getByRole("heading", { name: "Draft title", level: 1 }).waitFor();

    // Rename.
    await h.getByText("Rename room").click();
    await h.getByLabel("Room title").fill("Book club");
    await h.getByRole("button", { name: "Rename" }).click();
    await h.getByRole("heading", { name: "Book club", level: 1 }).waitFor();

    // Invite by username; the member declines the live invitation.
    const inviteForm = h.getByRole("region", { name: "Invite people" });
    await inviteForm.getByLabel("Username").fill("moe");
    await inviteForm.getByRole("button", { name: "Invite", exact: true }).click();
    await inviteForm.getByText("Invited Mo Member (@moe).").waitFor();
    const invitations = m.getByRole("region", { name: "Invitations" });
    await m.getByRole("alert").filter({ hasText: "Book club" }).waitFor();
    await invitations.getByRole("button", { name: "Decline", exact: true }).click();
    await invitations.getByText("You declined the invitation to “Book club”.").waitFor();

    // Inviting twice while pending is refused with the server's message.
    await inviteForm.getByLabel("Username").fill("moe");
    await inviteForm.getByRole("button", { name: "Invite", exact: true }).click();
    await inviteForm.getByText("Invited Mo Member (@moe).").waitFor();
    await inviteForm.getByLabel("Username").fill("moe");
    await inviteForm.getByRole("button", { name: "Invite", exact: true }).click();
    await inviteForm.locator('[data-kind="error"]').waitFor();

    // The member accepts; the host's member list updates by itself.
    await invitations.getByRole("button", { name: "Accept", exact: true }).click();
    await m.getByRole("region", { name: "Your rooms" }).getByRole("link", { name: "Book club" }).waitFor();
    const row = h.getByRole("region", { name: "Members" }).getByRole("listitem").filter({ hasText: "@moe" });
    await row.getByText("Member", { exact: true }).waitFor();

    // Admin and back.
    await row.getByRole("button", { name: "Make admin" }).click();
    await row.getByText("Admin", { exact: true }).waitFor();
    await row.getByRole("button", { name: "Make member" }).click();
    await row.getByText("Member", { exact: true }).waitFor();
    await h.screenshot({ path: path.join(shots, "room-manage-desktop.png"), fullPage: true });

    // The member leaves.
    await m.getByRole("link", { name: "Book club" }).click();
    await m.getByRole("heading", { name: "Book club", level: 1 }).waitFor();
    await m.getByRole("button", { name: "Leave room" }).click();
    await m.getByRole("heading", { name: "Home", level: 1 }).waitFor();
    assert.equal(await m.getByRole("region", { name: "Your rooms" }).getByRole("link", { name: "Book club" }).count(), 0);

    // The host deletes the room.
    await h.reload();
    await h.getByRole("heading", { name: "Book club", level: 1 }).waitFor();
    assert.equal(await h.getByRole("region", { name: "Members" }).getByRole("listitem").count(), 1);
    await h.getByRole("button", { name: "Delete room" }).click();
    await h.getByRole("heading", { name: "Home", level: 1 }).waitFor();
    assert.equal(await h.getByRole("region", { name: "Your rooms" }).getByRole("link", { name: "Book club" }).count(), 0);

    assert.deepEqual(errors.flat(), [], "no script errors in the pages");
  } catch (err) {
    await h.screenshot({ path: path.join(shots, "failure-manage-host.png"), fullPage: true }).catch(() => {});
    await m.screenshot({ path: path.join(shots, "failure-manage-member.png"), fullPage: true }).catch(() => {});
    t.diagnostic(`server output:\n${server.logs().slice(-4000)}`);
    throw err;
  } finally {
    await hostContext.close();
    await memberContext.close();
  }
});

test("encoders: the host makes a WHIP key, sees its secret once, and deletes it", { timeout: 60_000 }, async () => {
  const context = await browser.newContext({ baseURL: server.baseUrl, viewport: PHONE });
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  const errors = collectErrors(page, "host");
  try {
    await registerInUi(page, { username: "ella", displayName: "Ella Encoder", password: "ella-secret-12" });
    await page.waitForURL((url) => !url.pathname.startsWith("/register"));
    const me = await (await page.request.get("/api/v1/me")).json();
    await page.goto(`/rooms/${encodeURIComponent(me.rooms[0].id)}`);
    const section = page.getByRole("region", { name: "Encoders" });
    await section.getByLabel("Encoder name").fill("Studio camera");
    await section.getByRole("button", { name: "Create key" }).click();
    const token = await section.getByLabel("Bearer token").inputValue();
    assert.match(token, /^[A-Za-z0-9_-]{43}$/, "a fresh secret is shown");
    assert.match(await section.getByLabel("WHIP address").inputValue(), /\/api\/v1\/rooms\/[a-z2-7]+\/whip$/);
    await section.getByRole("listitem").filter({ hasText: "Studio camera" }).waitFor();
    await page.screenshot({ path: path.join(shots, "room-encoders-phone.png"), fullPage: true });

    // After a reload the secret is gone for good; the key is still listed.
    await page.reload();
    await section.getByRole("listitem").filter({ hasText: "Studio camera" }).waitFor();
    assert.equal(await section.getByLabel("Bearer token").count(), 0);
    assert.equal((await page.content()).includes(token), false, "the secret is not on the page any more");

    page.once("dialog", (dialog) => void dialog.accept());
    await section.getByRole("listitem").filter({ hasText: "Studio camera" }).getByRole("button", { name: "Delete" }).click();
    await section.getByRole("listitem").filter({ hasText: "Studio camera" }).waitFor({ state: "detached" });
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});
