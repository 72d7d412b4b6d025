-- `screenshot = true`: a PNG of the rendered page, kept with the snapshot it was taken with
-- (and pruned with it).
ALTER TABLE snapshots ADD COLUMN screenshot BLOB;
