-- Deployment windows are read newest first as one cursor chain each. After every committed page
-- the window's unread rest is [from_at, remaining_to): a killed run resumes from the oldest
-- deployment it committed instead of from the window's end. NULL: nothing of it read yet (every
-- window of an older warehouse, which therefore resumes as it always did).
ALTER TABLE sync_windows ADD COLUMN remaining_to TIMESTAMPTZ;

-- The rolling re-verification of each (project, environment)'s history (etl/state.py): the next
-- slice ends at `position` (NULL: at the top) and is due at the first run ending at or after
-- `swept_at` (the time the sweep is paid up to).
CREATE TABLE sync_reverify (
    project_key VARCHAR NOT NULL,
    environment_key VARCHAR NOT NULL,
    position TIMESTAMPTZ,
    swept_at TIMESTAMPTZ NOT NULL
    -- key: (project_key, environment_key), kept by etl/state.py (delete, then insert)
);
