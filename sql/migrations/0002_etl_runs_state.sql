-- The run ledger and incremental state. State rows are written in the same transaction as the
-- data they cover, so after a crash the next run resumes exactly where the last commit ended.

CREATE TABLE etl_runs (
    run_id VARCHAR PRIMARY KEY,
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

-- One row per planned deployment time window of one (project, environment). A window is done
-- when done_run_id is set; that happens in the transaction that loads its last page.
CREATE TABLE sync_windows (
    project_key VARCHAR NOT NULL,
    environment_key VARCHAR NOT NULL,
    from_at TIMESTAMPTZ NOT NULL,
    to_at TIMESTAMPTZ NOT NULL,
    planned_run_id VARCHAR NOT NULL,
    done_run_id VARCHAR,
    PRIMARY KEY (project_key, environment_key, from_at, to_at)
);
