-- `max_response_time`: slow answers in a row, and when `degraded` was told.
ALTER TABLE watches ADD COLUMN degraded_checks INTEGER NOT NULL DEFAULT 0;
ALTER TABLE watches ADD COLUMN degraded_alerted_at INTEGER;

-- each answered check's response time, kept a day, for `list`'s p50 and p95
CREATE TABLE timings (
    watch_id INTEGER NOT NULL REFERENCES watches(id) ON DELETE CASCADE,
    at       INTEGER NOT NULL,
    ms       INTEGER NOT NULL
);
CREATE INDEX timings_by_watch ON timings(watch_id, at);
CREATE INDEX timings_by_time ON timings(at);
