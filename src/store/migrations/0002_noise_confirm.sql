-- Version 2: masks and confirmation.
-- content_hash is now taken over the masked text (what decides "changed"); text_hash is the
-- hash of the text as stored, so a change made only of masked fragments is told apart (noise).
ALTER TABLE watches ADD COLUMN text_hash BLOB;
-- A change seen but not yet confirmed (`confirm = N`): its content hash and how many checks
-- in a row have seen it.
ALTER TABLE watches ADD COLUMN pending_hash BLOB;
ALTER TABLE watches ADD COLUMN pending_count INTEGER NOT NULL DEFAULT 0;
