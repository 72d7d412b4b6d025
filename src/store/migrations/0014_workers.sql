-- Version 14 (both engines): several workers on one database.
-- A lease per watch: the worker checking it, and until when (ms); a worker renews its
-- leases while it runs, so a dead worker's end `ttl` ms after its last renewal.
CREATE TABLE leases (
    name  TEXT PRIMARY KEY,
    owner TEXT,
    until BIGINT,
    ttl   BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX leases_by_owner ON leases(owner);

-- The workers (`forewarn watch`, `check --due`) that run on this database: where, which
-- watchlist (a digest of its files), and when each was last seen.
CREATE TABLE workers (
    id         TEXT PRIMARY KEY,
    host       TEXT NOT NULL,
    pid        BIGINT NOT NULL,
    command    TEXT NOT NULL,
    watchlist  TEXT NOT NULL,
    watches    BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    stopped_at BIGINT
);

-- the host of the process that claimed an outbox row (its pid means nothing elsewhere)
ALTER TABLE outbox ADD COLUMN claimed_host TEXT;

-- who runs a verify ("host:pid"): another worker's running verify is not interrupted
ALTER TABLE verifies ADD COLUMN owner TEXT;
