-- DuckLake's form of migrations/0003_rejected_records.sql: _raw is VARCHAR from the start (0004).
-- Records that did not fit their schema, kept exactly as received instead of being loaded.
-- A run that rejects a record ends `partial`; the window or listing it came in is not marked
-- done, so the next run reads it again (and loads it once the source is fixed).

CREATE TABLE rejected_records (
    run_id VARCHAR NOT NULL,
    stream VARCHAR NOT NULL,
    record_hash VARCHAR NOT NULL,   -- sha1 of _raw
    scope JSON NOT NULL,            -- where it came from: {"project_key": …, …}
    error VARCHAR NOT NULL,         -- what was wrong, naming the record and field
    _raw VARCHAR NOT NULL,
    rejected_at TIMESTAMPTZ NOT NULL
    -- key: (run_id, stream, record_hash)
);
