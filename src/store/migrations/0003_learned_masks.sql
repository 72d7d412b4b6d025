-- Version 3: masks learned from two immediate fetches (JSON list of line patterns).
ALTER TABLE watches ADD COLUMN learned_masks TEXT;
