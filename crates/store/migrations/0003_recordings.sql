-- Recordings: one per broadcast, made as it airs. The media lives in object
-- storage under `storage_key`; this row says what state it is in and what
-- it holds. `state`: 'recording' (on air, or left so by a crash until the
-- next start finishes it), 'ready' (the VOD playlist is stored), 'failed'
-- (nothing playable could be stored).
CREATE TABLE recordings (
    broadcast_id TEXT    PRIMARY KEY REFERENCES broadcasts (id) ON DELETE CASCADE,
    storage_key  TEXT    NOT NULL UNIQUE,
    state        TEXT    NOT NULL CHECK (state IN ('recording', 'ready', 'failed')),
    duration_ms  INTEGER NOT NULL DEFAULT 0,
    bytes        INTEGER NOT NULL DEFAULT 0,
    -- The last storage problem, for the host (NULL when there was none).
    error        TEXT,
    created_at   INTEGER NOT NULL,
    finished_at  INTEGER
);
CREATE INDEX recordings_by_state ON recordings (state, finished_at);
