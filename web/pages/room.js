// @ts-check
/**
 * A room's page: its title (the host may rename it), host and members with
 * their roles, and for the host and admins the tools to manage members,
 * invite people by username and create invite links. The "Conference"
 * section on top is where members see and hear each other.
 */

import * as api from "../api.js";
import { conferencePanel } from "../conference/view.js";
import { onServerEvent } from "../events.js";
import { ingestSection } from "../ingest-section.js";
import { recordingsSection } from "../recordings-section.js";
import { loadSession, session } from "../session.js";
import { busy, dateTime, errorText, field, h, messageArea, replace, roleBadge, say, uid, userName } from "../ui.js";

/** @typedef {import("../api.js").Room} Room */
/** @typedef {import("../api.js").Member} Member */

/** @type {import("../router.js").Render} */
export async function render({ main, params, signal, navigate }) {
  const roomId = params.id;
  document.title = "Room — confcast";
  const loading = h("p", { class: "empty" }, "Loading room…");
  main.append(h("p", { class: "breadcrumb" }, h("a", { href: "/" }, "← Home")), loading);
  main.setAttribute("aria-busy", "true");

  /** @type {Room} */
  let room;
  try {
    room = await api.getRoom(roomId, signal);
  } catch (err) {
    if (signal.aborted) return;
    loading.remove();
    main.removeAttribute("aria-busy");
    showGone(main, err);
    return;
  }
  if (signal.aborted) return;
  loading.remove();
  main.removeAttribute("aria-busy");

  const me = session()?.user.username ?? "";
  const view = roomView(room, me, { navigate, reload, signal });
  main.append(view.element);

  async function reload() {
    try {
      view.update(await api.getRoom(roomId, signal));
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof api.ApiError && (err.status === 403 || err.status === 404)) {
        view.leaveConference();
        main.replaceChildren(h("p", { class: "breadcrumb" }, h("a", { href: "/" }, "← Home")));
        showGone(main, err);
        void loadSession().catch(() => {});
      } else {
        view.say(errorText(err), "error");
      }
    }
  }

  onServerEvent("rooms_changed", () => void reload(), signal);
  onServerEvent("reconnected", () => void reload(), signal);
  onServerEvent(
    "invitation_updated",
    (invitation) => {
      if (invitation.room.id === roomId && invitation.status === "accepted") void reload();
    },
    signal,
  );
}

/**
 * @param {HTMLElement} main
 * @param {unknown} err
 */
function showGone(main, err) {
  const notThere = err instanceof api.ApiError && (err.status === 403 || err.status === 404);
  document.title = "Room not available — confcast";
  main.append(
    h("h1", null, notThere ? "Room not available" : "Could not load the room"),
    h(
      "p",
      { role: "alert" },
      notThere ? "This room does not exist, or you are not one of its members." : errorText(err),
    ),
  );
}

/**
 * @param {Room} initial
 * @param {string} me my username
 * @param {{navigate: (url: string) => void, reload: () => Promise<void>, signal: AbortSignal}} deps
 */
function roomView(initial, me, { navigate, reload, signal }) {
  let room = initial;
  const canManage = () => room.your_role === "host" || room.your_role === "admin";

  // Header: title, host, my role, and (for the host) renaming.
  const title = h("h1", { class: "room-heading" });
  const meta = h("p", { class: "room-meta" });
  const pageStatus = messageArea();
  const renameInput = h("input", { name: "title", required: true, maxlength: 100, autocomplete: "off" });
  const renameButton = h("button", { type: "submit" }, "Rename");
  const renameMessage = messageArea("alert");
  const renameForm = h(
    "form",
    { class: "inline-form" },
    field("Room title", renameInput),
    h("div", { class: "actions" }, renameButton),
  );
  const renameBox = h("details", { class: "rename" }, h("summary", null, "Rename room"), renameForm, renameMessage);
  renameForm.addEventListener("submit", (event) => {
    event.preventDefault();
    say(renameMessage, "");
    void busy(renameButton, async () => {
      try {
        update(await api.renameRoom(room.id, renameInput.value.trim()));
        renameBox.open = false;
        say(pageStatus, "Room renamed.", "success");
      } catch (err) {
        say(renameMessage, errorText(err), "error");
      }
    });
  });

  // Members.
  const membersHeading = uid("members-heading");
  const memberList = h("ul", { class: "plain-list member-list" });
  const membersMessage = messageArea("alert");
  const membersSection = h(
    "section",
    { class: "card", "aria-labelledby": membersHeading },
    h("h2", { id: membersHeading }, "Members"),
    membersMessage,
    memberList,
  );

  // Inviting: by username, and by link.
  const inviteHeading = uid("invite-heading");
  const inviteInput = h("input", {
    name: "username",
    required: true,
    autocomplete: "off",
    autocapitalize: "none",
    spellcheck: "false",
    maxlength: 32,
  });
  const inviteButton = h("button", { type: "submit" }, "Invite");
  const inviteMessage = messageArea();
  const inviteForm = h(
    "form",
    { class: "inline-form" },
    field("Username", inviteInput),
    h("div", { class: "actions" }, inviteButton),
  );
  inviteForm.addEventListener("submit", (event) => {
    event.preventDefault();
    say(inviteMessage, "");
    const username = inviteInput.value.trim();
    void busy(inviteButton, async () => {
      try {
        const invitation = await api.inviteUser(room.id, username);
        say(inviteMessage, `Invited ${invitation.invitee.display_name} (@${invitation.invitee.username}).`, "success");
        inviteInput.value = "";
      } catch (err) {
        say(inviteMessage, errorText(err), "error");
      }
    });
  });

  const linkButton = h("button", { type: "button", class: "secondary" }, "Create invite link");
  const linkMessage = messageArea();
  const linkOutput = h("div", { class: "invite-link", hidden: true });
  linkButton.addEventListener("click", () => {
    say(linkMessage, "");
    void busy(linkButton, async () => {
      try {
        const link = await api.createInviteLink(room.id);
        showLink(location.origin + link.url, link.expires_at);
      } catch (err) {
        say(linkMessage, errorText(err), "error");
      }
    });
  });

  /**
   * @param {string} url
   * @param {string} expiresAt
   */
  function showLink(url, expiresAt) {
    const input = h("input", { type: "url", readonly: true, value: url, class: "link-field" });
    const copy = h("button", { type: "button", class: "secondary" }, "Copy link");
    const copied = h("span", { class: "item-status", role: "status" });
    input.addEventListener("focus", () => input.select());
    copy.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(url);
        copied.textContent = "Copied.";
      } catch {
        input.focus();
        input.select();
        copied.textContent = "Select the link and copy it.";
      }
    });
    replace(
      linkOutput,
      field("Invite link", input, "Anyone with an account who opens this link joins the room."),
      h("div", { class: "actions" }, copy, copied),
      h("p", { class: "meta" }, "Valid until ", dateTime(expiresAt), "."),
    );
    linkOutput.hidden = false;
    input.focus();
  }

  const inviteSection = h(
    "section",
    { class: "card", "aria-labelledby": inviteHeading },
    h("h2", { id: inviteHeading }, "Invite people"),
    inviteForm,
    inviteMessage,
    h("h3", null, "Share a link"),
    h("p", { class: "hint" }, "A link lets people join without being invited one by one."),
    h("div", { class: "actions" }, linkButton),
    linkMessage,
    linkOutput,
  );

  // The conference: camera, microphone and the room's video (web/conference/).
  const conference = conferencePanel({ roomId: initial.id, signal });

  // Past broadcasts of the room (web/recordings-section.js).
  const recordings = recordingsSection({ roomId: initial.id, signal });

  // Encoders publishing into the room over WHIP (web/ingest-section.js).
  const ingest = ingestSection({ roomId: initial.id, signal });

  // Leaving, or deleting a room one hosts.
  const leaveButton = h("button", { type: "button", class: "danger" }, "Leave room");
  const deleteButton = h("button", { type: "button", class: "danger" }, "Delete room");
  const endMessage = messageArea("alert");
  const endSection = h("section", { class: "card end" }, h("div", { class: "actions" }, leaveButton, deleteButton), endMessage);
  leaveButton.addEventListener("click", () => {
    if (!confirm(`Leave “${room.title}”? You will need a new invitation to come back.`)) return;
    void busy(leaveButton, async () => {
      try {
        await api.removeMember(room.id, me);
        await loadSession().catch(() => null);
        navigate("/");
      } catch (err) {
        say(endMessage, errorText(err), "error");
      }
    });
  });
  deleteButton.addEventListener("click", () => {
    if (!confirm(`Delete “${room.title}” for all its members? This cannot be undone.`)) return;
    void busy(deleteButton, async () => {
      try {
        await api.deleteRoom(room.id);
        await loadSession().catch(() => null);
        navigate("/");
      } catch (err) {
        say(endMessage, errorText(err), "error");
      }
    });
  });

  /** @param {Member} member */
  function memberItem(member) {
    const nameId = uid("member");
    const isMe = member.username === me;
    /** @type {HTMLButtonElement[]} */
    const buttons = [];
    if (room.your_role === "host" && member.role !== "host") {
      const newRole = member.role === "admin" ? "member" : "admin";
      const roleButton = h(
        "button",
        { type: "button", class: "secondary", "aria-describedby": nameId },
        newRole === "admin" ? "Make admin" : "Make member",
      );
      roleButton.addEventListener("click", () => {
        say(membersMessage, "");
        void busy(roleButton, async () => {
          try {
            update(await api.setMemberRole(room.id, member.username, newRole));
            say(pageStatus, `${member.display_name} is now ${newRole === "admin" ? "an admin" : "a member"}.`, "success");
          } catch (err) {
            say(membersMessage, errorText(err), "error");
          }
        });
      });
      buttons.push(roleButton);
    }
    const mayRemove =
      !isMe &&
      member.role !== "host" &&
      (room.your_role === "host" || (room.your_role === "admin" && member.role === "member"));
    if (mayRemove) {
      const removeButton = h("button", { type: "button", class: "danger", "aria-describedby": nameId }, "Remove");
      removeButton.addEventListener("click", () => {
        if (!confirm(`Remove ${member.display_name} (@${member.username}) from “${room.title}”?`)) return;
        say(membersMessage, "");
        void busy(removeButton, async () => {
          try {
            await api.removeMember(room.id, member.username);
            say(pageStatus, `${member.display_name} was removed.`, "success");
            await reload();
          } catch (err) {
            say(membersMessage, errorText(err), "error");
          }
        });
      });
      buttons.push(removeButton);
    }
    return h(
      "li",
      { class: "member" },
      h(
        "span",
        { id: nameId, class: "member-name" },
        userName(member),
        isMe ? h("span", { class: "tag" }, "you") : null,
      ),
      roleBadge(member.role),
      buttons.length ? h("div", { class: "actions" }, buttons) : null,
    );
  }

  /** @param {Room} next */
  function update(next) {
    room = next;
    document.title = `${room.title} — confcast`;
    title.textContent = room.title;
    replace(
      meta,
      h("span", null, "Host: ", userName(room.host)),
      h("span", null, "Your role: ", roleBadge(room.your_role)),
      room.personal ? h("span", { class: "tag" }, "Personal room") : null,
      h("span", null, "Created ", dateTime(room.created_at)),
    );
    if (!renameBox.open) renameInput.value = room.title;
    renameBox.hidden = room.your_role !== "host";
    inviteSection.hidden = !canManage();
    const order = { host: 0, admin: 1, member: 2 };
    const members = [...room.members].sort((a, b) => order[a.role] - order[b.role]);
    replace(memberList, members.map(memberItem));
    leaveButton.hidden = room.your_role === "host";
    deleteButton.hidden = room.your_role !== "host" || room.personal;
    endSection.hidden = leaveButton.hidden && deleteButton.hidden;
    conference.setRole(room.your_role ?? null);
    recordings.setRole(room.your_role ?? null);
    ingest.setRole(room.your_role ?? null);
  }

  update(initial);

  const element = h(
    "div",
    { class: "room-page" },
    h("header", { class: "room-header" }, title, meta, renameBox),
    pageStatus,
    conference.element,
    h(
      "div",
      { class: "room-grid" },
      h("div", { class: "column" }, membersSection, recordings.element),
      h("div", { class: "column" }, inviteSection, ingest.element, endSection),
    ),
  );

  return {
    element,
    update,
    leaveConference: () => conference.leave(),
    /**
     * @param {string} text
     * @param {"info" | "success" | "error"} kind
     */
    say: (text, kind) => say(pageStatus, text, kind),
  };
}
