-- Version 5: integration contracts (`expect`): each expectation's last state, as JSON.
ALTER TABLE watches ADD COLUMN contracts TEXT;
