-- DuckLake's form of migrations/0002_etl_runs_state.sql: DuckLake has no PRIMARY KEY, so the
-- keys are kept by the code (one row per run_id, written by its own run; sync_windows rows
-- replaced by key), as for the data tables.

CREATE TABLE etl_runs (
    run_id VARCHAR NOT NULL,          -- key
    started_at TIMESTAMPTZ NOT NULL,
    ended_at TIMESTAMPTZ,
    status VARCHAR NOT NULL,          -- running | succeeded | partial | failed | abandoned
    streams JSON,                     -- per stream: {"status": …, "records": n, "error": …}
    requests BIGINT,
    retries BIGINT,
    rate_limited BIGINT,
    error VARCHAR,
    options JSON                      -- what the run was asked to do (never the token)
);

CREATE TABLE sync_windows (
    project_key VARCHAR NOT NULL,
    environment_key VARCHAR NOT NULL,
    from_at TIMESTAMPTZ NOT NULL,
    to_at TIMESTAMPTZ NOT NULL,
    planned_run_id VARCHAR NOT NULL,
    done_run_id VARCHAR
    -- key: (project_key, environment_key, from_at, to_at)
);

-- The lake's writer token: every batch a sync commits bumps this one row, so any two batch
-- transactions that overlap in time conflict and one of them is re-run (etl/warehouse/
-- ducklake.py). Without it two workers could both insert a key neither saw (DuckLake lets
-- concurrent INSERTs into one table both commit), and a key would be held twice.
CREATE TABLE etl_lake_writer (commits BIGINT NOT NULL);
INSERT INTO etl_lake_writer VALUES (0);
