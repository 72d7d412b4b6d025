-- `[escalations.NAME]`: an event going through its steps until acknowledged.
CREATE TABLE escalations (
    event_id   INTEGER PRIMARY KEY REFERENCES events(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    -- the next step to take (0-based); past the last, the escalation is done
    step       INTEGER NOT NULL DEFAULT 0,
    started_at INTEGER NOT NULL,
    next_at    INTEGER NOT NULL,
    acked_at   INTEGER,
    acked_by   TEXT,
    note       TEXT
);
CREATE INDEX escalations_due ON escalations(next_at) WHERE acked_at IS NULL;
