-- Version 4: small facts about the database as a whole (key -> JSON value), e.g. the
-- `check --due` gate: the earliest next due time and the watchlist files it was computed from.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
