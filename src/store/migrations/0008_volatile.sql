-- Volatile watches: the last checks' changes (bit 0 the newest, 1 = changed), how many
-- checks those bits hold (at most 16), and since when the watch has been told volatile.
ALTER TABLE watches ADD COLUMN recent_changes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE watches ADD COLUMN recent_checks INTEGER NOT NULL DEFAULT 0;
ALTER TABLE watches ADD COLUMN volatile_since INTEGER;
