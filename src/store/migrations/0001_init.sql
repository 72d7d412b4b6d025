-- forewarn schema, version 1. Released migrations are never edited: add a new file instead.

CREATE TABLE watches (
    id                   INTEGER PRIMARY KEY,
    name                 TEXT NOT NULL UNIQUE,
    -- the URL as written in the watchlist: `${VAR}` unexpanded, credentials redacted
    url                  TEXT NOT NULL,
    created_at           INTEGER NOT NULL,
    -- validators exactly as the server sent them
    etag                 TEXT,
    last_modified        TEXT,
    -- BLAKE3 of the extracted, normalised content, and of the raw body
    content_hash         BLOB,
    raw_hash             BLOB,
    -- what was extracted (kind, select, remove, ignore) when content_hash was taken
    spec                 TEXT,
    last_snapshot_id     INTEGER,
    last_check_at        INTEGER,
    last_ok_at           INTEGER,
    last_change_at       INTEGER,
    last_status          INTEGER,
    last_duration_ms     INTEGER,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    failing_since        INTEGER,
    last_error           TEXT,
    -- JSON list of `select` entries that matched nothing, while they stay missing
    missing_selectors    TEXT,
    missing_since        INTEGER
);

CREATE TABLE snapshots (
    id           INTEGER PRIMARY KEY,
    watch_id     INTEGER NOT NULL REFERENCES watches(id) ON DELETE CASCADE,
    taken_at     INTEGER NOT NULL,
    content_hash BLOB NOT NULL,
    raw_hash     BLOB,
    -- 0: UTF-8 text as is; 1: zstd-compressed UTF-8 text
    encoding     INTEGER NOT NULL,
    size         INTEGER NOT NULL,
    content      BLOB NOT NULL
);
CREATE INDEX snapshots_by_watch ON snapshots(watch_id, id);

CREATE TABLE events (
    id            INTEGER PRIMARY KEY,
    watch_id      INTEGER NOT NULL REFERENCES watches(id) ON DELETE CASCADE,
    at            INTEGER NOT NULL,
    kind          TEXT NOT NULL,
    summary       TEXT NOT NULL,
    diff          TEXT,
    -- event-specific fields as a JSON object
    detail        TEXT,
    from_snapshot INTEGER,
    to_snapshot   INTEGER
);
CREATE INDEX events_by_time ON events(at);
CREATE INDEX events_by_watch ON events(watch_id, at);
