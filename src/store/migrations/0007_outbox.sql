-- forewarn schema, version 7: durable notifications.
-- One row per (event, channel), written in the transaction that writes the event.

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    event_id        INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    channel         TEXT NOT NULL,
    severity        TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    -- pending -> sending (claimed by a process) -> delivered | pending (retry) | failed
    state           TEXT NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    claimed_at      INTEGER,
    claimed_by      INTEGER,
    delivered_at    INTEGER,
    last_error      TEXT,
    -- the message (delivery id) it went out in
    message         TEXT,
    UNIQUE (event_id, channel)
);
CREATE INDEX outbox_by_state ON outbox(state, next_attempt_at);

-- when a `failing` alert was last raised for the watch (NULL: none since it last worked)
ALTER TABLE watches ADD COLUMN failing_alerted_at INTEGER;
