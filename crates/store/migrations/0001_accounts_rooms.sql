-- Accounts, server-side sessions, rooms, memberships and invitations.
-- Times are Unix seconds (UTC). Usernames are stored lower-case, so the
-- UNIQUE constraint is the case-insensitive uniqueness rule.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    display_name  TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX users_by_display_name ON users (display_name COLLATE NOCASE);

-- Only a hash of each session token is kept: a copy of the database does not
-- let anyone log in.
CREATE TABLE sessions (
    token_hash BLOB    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

CREATE TABLE rooms (
    id         TEXT    PRIMARY KEY,
    title      TEXT    NOT NULL,
    owner_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    personal   INTEGER NOT NULL DEFAULT 0 CHECK (personal IN (0, 1)),
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX rooms_one_personal_per_user ON rooms (owner_id) WHERE personal = 1;

CREATE TABLE room_members (
    room_id   TEXT    NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role      TEXT    NOT NULL CHECK (role IN ('host', 'admin', 'member')),
    joined_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_members_by_user ON room_members (user_id);

CREATE TABLE invitations (
    id           TEXT    PRIMARY KEY,
    room_id      TEXT    NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    inviter_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    invitee_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status       TEXT    NOT NULL CHECK (status IN ('pending', 'accepted', 'declined', 'cancelled')),
    created_at   INTEGER NOT NULL,
    responded_at INTEGER
);
CREATE UNIQUE INDEX invitations_one_pending ON invitations (room_id, invitee_id) WHERE status = 'pending';
CREATE INDEX invitations_by_invitee ON invitations (invitee_id, status);

CREATE TABLE invite_links (
    token_hash BLOB    PRIMARY KEY,
    room_id    TEXT    NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    created_by INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
