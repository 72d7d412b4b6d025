-- Version 6: `track_assets`: the page's script and stylesheet URLs at the last check (JSON).
ALTER TABLE watches ADD COLUMN assets TEXT;
