// @ts-check
/**
 * Home: pending invitations (ringing live when one arrives), my rooms,
 * creating a room, and finding people to invite.
 */

import * as api from "../api.js";
import { onServerEvent } from "../events.js";
import { ring } from "../ring.js";
import { loadSession, onSessionChange, session, setSession } from "../session.js";
import { bellIcon, busy, dateTime, errorText, field, h, messageArea, replace, roleBadge, say, uid, userName } from "../ui.js";

/** @typedef {import("../api.js").Invitation} Invitation */
/** @typedef {import("../api.js").RoomSummary} RoomSummary */
/** @typedef {import("../api.js").UserRef} UserRef */

/** @type {import("../router.js").Render} */
export async function render({ main, signal, navigate }) {
  document.title = "Home — confcast";
  const me = session();
  if (!me) return;
  const myName = me.user.username;

  const invitations = invitationsView(signal);
  const rooms = roomsView();
  const people = peopleView(myName, signal);

  /** @param {RoomSummary[]} list */
  const showRooms = (list) => {
    rooms.update(list);
    people.updateRooms(list);
  };
  showRooms(me.rooms);
  onSessionChange((current) => current && showRooms(current.rooms), signal);

  invitations.onAccepted = (room) => {
    const current = session();
    if (current && !current.rooms.some((r) => r.id === room.id)) {
      setSession({ ...current, rooms: [...current.rooms, room] });
    }
    void refreshSession();
  };

  main.append(
    h("h1", { class: "page-title" }, "Home"),
    h(
      "div",
      { class: "home-grid" },
      h("div", { class: "column" }, invitations.section, rooms.section, createRoomView(navigate)),
      h("div", { class: "column" }, people.section),
    ),
  );

  async function refreshSession() {
    try {
      await loadSession(signal);
    } catch (err) {
      if (!signal.aborted) console.warn("could not refresh rooms", err);
    }
  }

  async function refreshInvitations() {
    try {
      invitations.setAll(await api.listInvitations(signal));
    } catch (err) {
      if (!signal.aborted) invitations.failed(errorText(err));
    }
  }

  onServerEvent(
    "invitation",
    (invitation) => {
      if (invitation.invitee.username !== myName || invitation.status !== "pending") return;
      invitations.ringFor(invitation);
      ring();
    },
    signal,
  );
  onServerEvent(
    "invitation_updated",
    (invitation) => {
      if (invitation.invitee.username === myName) invitations.updated(invitation);
      if (invitation.inviter.username === myName) people.invitationUpdated(invitation);
    },
    signal,
  );
  // Also sent when this tab fell behind on events: refetch everything shown.
  onServerEvent(
    "rooms_changed",
    () => {
      void refreshSession();
      void refreshInvitations();
    },
    signal,
  );
  onServerEvent(
    "reconnected",
    () => {
      void refreshInvitations();
      void refreshSession();
    },
    signal,
  );

  await Promise.all([refreshInvitations(), refreshSession()]);
}

/**
 * The list of pending invitations with Accept / Decline, and the ringing
 * notice for ones that arrive while the page is open.
 * @param {AbortSignal} signal
 */
function invitationsView(signal) {
  const headingId = uid("invitations-heading");
  const list = h("ul", { class: "plain-list invitation-list" });
  const empty = h("p", { class: "empty" }, "Loading invitations…");
  // Always in the document (empty when nothing rings) so that screen
  // readers announce what is put into it.
  const ringingArea = h("div", { role: "alert", class: "ringing-area" });
  const status = messageArea();
  /** @type {Map<string, HTMLLIElement>} */
  const items = new Map();
  /** Invitations that arrived live, so a slower list fetch does not drop them. */
  const live = new Set();
  /** @type {string | null} */
  let ringingFor = null;

  const section = h(
    "section",
    { class: "card", "aria-labelledby": headingId },
    h("h2", { id: headingId }, "Invitations"),
    ringingArea,
    status,
    empty,
    list,
  );

  const view = {
    section,
    /** @type {(room: RoomSummary) => void} */
    onAccepted: () => {},
    /** @param {string} message */
    failed(message) {
      empty.hidden = false;
      empty.textContent = `Could not load invitations: ${message}`;
    },
    /** @param {Invitation[]} invitations */
    setAll(invitations) {
      const ids = new Set(invitations.map((i) => i.id));
      for (const id of [...items.keys()]) {
        if (!ids.has(id) && !live.has(id)) remove(id);
      }
      for (const invitation of invitations) {
        if (invitation.status === "pending" && !items.has(invitation.id)) add(invitation, false);
      }
      syncEmpty();
    },
    /** @param {Invitation} invitation */
    ringFor(invitation) {
      live.add(invitation.id);
      items.get(invitation.id)?.remove();
      items.delete(invitation.id);
      add(invitation, true);
      ringingFor = invitation.id;
      replace(
        ringingArea,
        h(
          "p",
          { class: "ringing-notice" },
          bellIcon(),
          h("strong", null, "Ringing: "),
          `${invitation.inviter.display_name} (@${invitation.inviter.username}) is inviting you to “${invitation.room.title}”.`,
        ),
      );
      syncEmpty();
    },
    /** @param {Invitation} invitation */
    updated(invitation) {
      if (invitation.status === "pending" || !items.has(invitation.id)) return;
      remove(invitation.id);
      if (invitation.status === "cancelled") {
        say(status, `${invitation.inviter.display_name} withdrew the invitation to “${invitation.room.title}”.`);
      }
      syncEmpty();
    },
  };

  function syncEmpty() {
    empty.hidden = items.size > 0;
    if (items.size === 0) empty.textContent = "No pending invitations.";
  }

  /** @param {string} id */
  function remove(id) {
    items.get(id)?.remove();
    items.delete(id);
    live.delete(id);
    if (ringingFor === id) {
      ringingFor = null;
      ringingArea.replaceChildren();
    }
  }

  /**
   * @param {Invitation} invitation
   * @param {boolean} ringing
   */
  function add(invitation, ringing) {
    const descId = uid("invitation");
    const accept = h("button", { type: "button", "aria-describedby": descId }, "Accept");
    const decline = h("button", { type: "button", class: "secondary", "aria-describedby": descId }, "Decline");
    const item = h(
      "li",
      { class: ringing ? "invitation ringing" : "invitation" },
      h(
        "p",
        { id: descId, class: "invitation-text" },
        userName(invitation.inviter),
        " invites you to ",
        h("strong", { class: "room-title" }, invitation.room.title),
      ),
      h("p", { class: "meta" }, dateTime(invitation.created_at)),
      h("div", { class: "actions" }, accept, decline),
    );
    items.set(invitation.id, item);
    list.prepend(item);

    /**
     * @param {HTMLButtonElement} button
     * @param {() => Promise<void>} action
     */
    const answer = (button, action) => {
      say(status, "");
      accept.disabled = decline.disabled = true;
      void busy(button, async () => {
        try {
          await action();
        } catch (err) {
          if (signal.aborted) return;
          say(status, errorText(err), "error");
          // Gone or already answered elsewhere: nothing more to do with it here.
          if (err instanceof api.ApiError && [404, 409, 410].includes(err.status)) {
            remove(invitation.id);
            syncEmpty();
          }
        }
      }).finally(() => {
        accept.disabled = decline.disabled = false;
      });
    };

    accept.addEventListener("click", () =>
      answer(accept, async () => {
        const result = await api.acceptInvitation(invitation.id);
        remove(invitation.id);
        syncEmpty();
        say(status, `You joined “${result.room.title}”.`, "success");
        view.onAccepted(result.room);
      }),
    );
    decline.addEventListener("click", () =>
      answer(decline, async () => {
        await api.declineInvitation(invitation.id);
        remove(invitation.id);
        syncEmpty();
        say(status, `You declined the invitation to “${invitation.room.title}”.`);
      }),
    );
  }

  return view;
}

/** My rooms: title (linking to the room page), my role, and the host. */
function roomsView() {
  const headingId = uid("rooms-heading");
  const list = h("ul", { class: "plain-list room-list" });
  const empty = h("p", { class: "empty", hidden: true }, "You are not in any room yet.");
  const section = h(
    "section",
    { class: "card", "aria-labelledby": headingId },
    h("h2", { id: headingId }, "Your rooms"),
    empty,
    list,
  );
  return {
    section,
    /** @param {RoomSummary[]} rooms */
    update(rooms) {
      const sorted = [...rooms].sort(
        (a, b) => Number(b.personal && b.role === "host") - Number(a.personal && a.role === "host"),
      );
      replace(
        list,
        sorted.map((room) =>
          h(
            "li",
            { class: "room-item" },
            h("a", { href: `/rooms/${encodeURIComponent(room.id)}`, class: "room-link" }, room.title),
            h(
              "span",
              { class: "room-meta" },
              roleBadge(room.role),
              room.personal && room.role === "host" ? h("span", { class: "tag" }, "Personal room") : null,
              room.role === "host" ? null : h("span", { class: "host" }, "Host: ", userName(room.host)),
            ),
          ),
        ),
      );
      empty.hidden = rooms.length > 0;
    },
  };
}

/**
 * The form to create a room; goes to the new room's page.
 * @param {(url: string) => void} navigate
 */
function createRoomView(navigate) {
  const headingId = uid("create-heading");
  const title = h("input", { name: "title", required: true, maxlength: 100, autocomplete: "off" });
  const submit = h("button", { type: "submit" }, "Create room");
  const message = messageArea("alert");
  const form = h("form", { class: "inline-form" }, field("Room title", title), h("div", { class: "actions" }, submit));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    say(message, "");
    void busy(submit, async () => {
      try {
        const room = await api.createRoom(title.value.trim());
        navigate(`/rooms/${encodeURIComponent(room.id)}`);
      } catch (err) {
        say(message, errorText(err), "error");
      }
    });
  });
  return h(
    "section",
    { class: "card", "aria-labelledby": headingId },
    h("h2", { id: headingId }, "Create a room"),
    form,
    message,
  );
}

/**
 * Searching people by username prefix, with an Invite button for each,
 * into a room I host or administer (my personal room unless I choose).
 * @param {string} myName my username (left out of the results)
 * @param {AbortSignal} signal
 */
function peopleView(myName, signal) {
  const headingId = uid("people-heading");
  const input = h("input", {
    type: "search",
    name: "q",
    autocomplete: "off",
    autocapitalize: "none",
    spellcheck: "false",
    placeholder: "Name or username",
    maxlength: 64,
  });
  const searchButton = h("button", { type: "submit" }, "Search");
  const form = h(
    "form",
    { role: "search", class: "inline-form" },
    field("Search people", input),
    h("div", { class: "actions" }, searchButton),
  );
  const picker = h("select", { name: "room" });
  const pickerField = field("Invite into", picker);
  pickerField.hidden = true;
  const results = h("ul", { class: "plain-list result-list", "aria-label": "People found" });
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "More");
  const status = messageArea();
  const sentStatus = messageArea();

  /** @type {RoomSummary[]} */
  let inviteRooms = [];
  let query = "";
  /** @type {number | null} */
  let nextOffset = null;
  /** @type {AbortController | null} */
  let pending = null;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let debounce;
  /** @type {Map<string, HTMLElement>} invitation id → status line of that person */
  const sent = new Map();
  /** @type {Array<() => void>} */
  let resetters = [];

  signal.addEventListener("abort", () => {
    pending?.abort();
    clearTimeout(debounce);
  });

  /**
   * @param {string} prefix
   * @param {number} offset
   */
  async function search(prefix, offset) {
    pending?.abort();
    const controller = new AbortController();
    pending = controller;
    if (offset === 0) {
      query = prefix;
      say(status, "");
    }
    more.disabled = true;
    try {
      const page = await api.searchUsers(prefix, offset, controller.signal);
      if (controller.signal.aborted || signal.aborted) return;
      if (offset === 0) {
        results.replaceChildren();
        sent.clear();
        resetters = [];
      }
      for (const user of page.users) {
        if (user.username !== myName) results.append(resultItem(user));
      }
      nextOffset = page.next_offset;
      more.hidden = nextOffset === null;
      if (results.childElementCount === 0 && nextOffset === null) {
        say(status, `No one else has a name or username starting with “${prefix}”.`);
      }
    } catch (err) {
      if (controller.signal.aborted || signal.aborted) return;
      say(status, errorText(err), "error");
    } finally {
      more.disabled = false;
      if (pending === controller) pending = null;
    }
  }

  /** @param {UserRef} user */
  function resultItem(user) {
    const nameId = uid("person");
    const line = h("span", { class: "item-status", role: "status" });
    const invite = h("button", { type: "button", "aria-describedby": nameId }, "Invite");
    const reset = () => {
      invite.disabled = false;
      invite.textContent = "Invite";
      line.textContent = "";
    };
    resetters.push(reset);
    invite.addEventListener("click", () => {
      const room = inviteRooms.find((r) => r.id === picker.value);
      if (!room) return;
      line.textContent = "";
      let invited = false;
      void busy(invite, async () => {
        try {
          const invitation = await api.inviteUser(room.id, user.username);
          sent.set(invitation.id, line);
          invited = true;
          line.textContent = `Invited to “${room.title}”. Ringing…`;
          line.dataset.kind = "success";
        } catch (err) {
          line.dataset.kind = "error";
          if (err instanceof api.ApiError && err.code === "already_member") {
            line.textContent = `Already in “${room.title}”.`;
          } else if (err instanceof api.ApiError && err.code === "already_invited") {
            line.textContent = `Already invited to “${room.title}”, waiting for an answer.`;
          } else {
            line.textContent = errorText(err);
          }
        }
      }).then(() => {
        if (invited) {
          invite.disabled = true;
          invite.textContent = "Invited";
        }
      });
    });
    return h(
      "li",
      { class: "result" },
      h("span", { id: nameId, class: "result-name" }, userName(user)),
      line,
      h("div", { class: "actions" }, invite),
    );
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(debounce);
    const prefix = input.value.trim();
    if (prefix) void search(prefix, 0);
  });
  input.addEventListener("input", () => {
    clearTimeout(debounce);
    const prefix = input.value.trim();
    if (!prefix) {
      pending?.abort();
      results.replaceChildren();
      more.hidden = true;
      say(status, "");
      return;
    }
    debounce = setTimeout(() => void search(prefix, 0), 300);
  });
  more.addEventListener("click", () => {
    if (nextOffset !== null) void search(query, nextOffset);
  });
  picker.addEventListener("change", () => {
    for (const reset of resetters) reset();
  });

  const section = h(
    "section",
    { class: "card", "aria-labelledby": headingId },
    h("h2", { id: headingId }, "Find people"),
    h("p", { class: "hint" }, "Search by the start of a name or username, and invite people into your room. They are rung at once if they are online."),
    form,
    pickerField,
    sentStatus,
    status,
    results,
    h("div", { class: "actions" }, more),
  );

  return {
    section,
    /** @param {RoomSummary[]} rooms */
    updateRooms(rooms) {
      const previous = picker.value;
      inviteRooms = rooms.filter((r) => r.role === "host" || r.role === "admin");
      const personal = inviteRooms.find((r) => r.personal && r.role === "host");
      replace(
        picker,
        inviteRooms.map((room) =>
          h("option", { value: room.id }, room.personal && room.role === "host" ? `${room.title} (personal room)` : room.title),
        ),
      );
      const keep = inviteRooms.find((r) => r.id === previous) ?? personal ?? inviteRooms[0];
      if (keep) picker.value = keep.id;
      pickerField.hidden = inviteRooms.length <= 1;
    },
    /** @param {Invitation} invitation one I sent */
    invitationUpdated(invitation) {
      const who = invitation.invitee.display_name;
      const where = invitation.room.title;
      /** @type {Record<string, string>} */
      const texts = {
        accepted: `${who} accepted your invitation to “${where}”.`,
        declined: `${who} declined your invitation to “${where}”.`,
        cancelled: `The invitation of ${who} to “${where}” was withdrawn.`,
      };
      const text = texts[invitation.status];
      if (!text) return;
      const line = sent.get(invitation.id);
      if (line) {
        line.textContent = text;
        line.dataset.kind = invitation.status === "accepted" ? "success" : "info";
      } else {
        say(sentStatus, text, invitation.status === "accepted" ? "success" : "info");
      }
    },
  };
}
