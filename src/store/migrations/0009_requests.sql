-- `track_requests`: the requests a browser watch's page made at its last check (JSON list).
ALTER TABLE watches ADD COLUMN requests TEXT;
