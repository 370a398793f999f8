-- Ingest keys: bearer secrets a host creates so an encoder (OBS, a studio
-- camera) can publish into the room over WHIP. Stored only as hashes.
CREATE TABLE ingest_keys (
    id          TEXT    PRIMARY KEY,
    room_id     TEXT    NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    token_hash  BLOB    NOT NULL UNIQUE,
    created_by  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL
);
CREATE INDEX ingest_keys_by_room ON ingest_keys (room_id, created_at);
