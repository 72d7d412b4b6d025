-- `verify`: the events whose verify is running. A row outlives its process only if that
-- process died mid-verify: the next run marks those events interrupted and sends their
-- held notifications.
CREATE TABLE verifies (
    event_id   INTEGER PRIMARY KEY REFERENCES events(id) ON DELETE CASCADE,
    started_at INTEGER NOT NULL
);

-- the watch's last verify failed: when, and what it said (cleared when one passes)
ALTER TABLE watches ADD COLUMN verify_failed_at INTEGER;
ALTER TABLE watches ADD COLUMN verify_failure TEXT;
