-- Version 15: a token per write transaction on PostgreSQL, committed with it. When the
-- connection drops as COMMIT is sent, the token says whether the transaction made it, so it is
-- not run a second time (a change stored and notified twice). Tokens are kept an hour.
CREATE TABLE commit_markers (
    token TEXT PRIMARY KEY,
    at    BIGINT NOT NULL
);
CREATE INDEX commit_markers_by_time ON commit_markers(at);
