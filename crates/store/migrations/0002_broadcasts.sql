-- Broadcasts: a room on air. `ended_at` is NULL while live; at most one live
-- broadcast per room.
CREATE TABLE broadcasts (
    id          TEXT    PRIMARY KEY,
    room_id     TEXT    NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    title       TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    started_by  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    started_at  INTEGER NOT NULL,
    ended_at    INTEGER
);
CREATE UNIQUE INDEX broadcasts_one_live_per_room ON broadcasts (room_id) WHERE ended_at IS NULL;
CREATE INDEX broadcasts_by_start ON broadcasts (started_at DESC);
