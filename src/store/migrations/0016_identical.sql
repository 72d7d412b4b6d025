-- Version 16: whether a watch's last answered check found the very text stored (a 304, or
-- the same text again). A page seen identical across checks does not churn per request, so a
-- change on it is not fetched a second time to learn what moves.
ALTER TABLE watches ADD COLUMN last_identical BIGINT NOT NULL DEFAULT 0;
