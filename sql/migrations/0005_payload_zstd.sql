-- The payloads of the tables that grow with history are compressed with zstd. DuckDB's own
-- choice for them was FSST, which it analyses and trains afresh at every checkpoint: on a
-- large sync (100k deployments, 140 MB of JSON) that cost ~0.5 s of the ~2.5 s the warehouse
-- thread spends, and left a 136 MB file where zstd leaves 71 MB. zstd needs storage version
-- v1.3.0 (read by DuckDB >= 1.3), which etl/load.py's writer sets. A column's compression is
-- chosen only as the column is created, so each table is rebuilt with the same columns, in
-- the same order (ALTER TABLE cannot restore NOT NULL after an UPDATE in one transaction).

CREATE TABLE deployments__zstd (
    deployment_id VARCHAR NOT NULL,
    project_key VARCHAR NOT NULL,
    environment_key VARCHAR NOT NULL,
    application_key VARCHAR NOT NULL,
    application_version VARCHAR NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    ended_at TIMESTAMPTZ,
    duration_ms BIGINT,
    status VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    active BOOLEAN NOT NULL,
    archived BOOLEAN NOT NULL,
    metadata VARCHAR USING COMPRESSION zstd,
    number_of_contributors BIGINT NOT NULL,
    number_of_pull_requests BIGINT NOT NULL,
    lines_added BIGINT NOT NULL,
    lines_deleted BIGINT NOT NULL,
    lead_time_ms BIGINT NOT NULL,
    coding_duration_ms BIGINT,
    review_duration_ms BIGINT,
    wait_duration_ms BIGINT,
    deploy_duration_ms BIGINT,
    total_lead_time_ms BIGINT,
    _raw VARCHAR USING COMPRESSION zstd NOT NULL,
    _run_id VARCHAR NOT NULL,
    _loaded_at TIMESTAMPTZ NOT NULL
    -- key: (deployment_id)
);
INSERT INTO deployments__zstd BY NAME SELECT * FROM deployments;
DROP TABLE deployments;
ALTER TABLE deployments__zstd RENAME TO deployments;

CREATE TABLE pull_requests__zstd (
    pull_request_id VARCHAR NOT NULL,
    external_id VARCHAR NOT NULL,
    title VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    author VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    merged_at TIMESTAMPTZ,
    merge_commit_key VARCHAR,
    base_commit_key VARCHAR NOT NULL,
    head_commit_key VARCHAR NOT NULL,
    files_changed BIGINT NOT NULL,
    lines_added BIGINT NOT NULL,
    lines_deleted BIGINT NOT NULL,
    url VARCHAR NOT NULL,
    _raw VARCHAR USING COMPRESSION zstd NOT NULL,
    _run_id VARCHAR NOT NULL,
    _loaded_at TIMESTAMPTZ NOT NULL
    -- key: (pull_request_id)
);
INSERT INTO pull_requests__zstd BY NAME SELECT * FROM pull_requests;
DROP TABLE pull_requests;
ALTER TABLE pull_requests__zstd RENAME TO pull_requests;

CREATE TABLE release_progressions__zstd (
    project_key VARCHAR NOT NULL,
    pipeline_key VARCHAR NOT NULL,
    flag_key VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    completed_at TIMESTAMPTZ,
    status VARCHAR NOT NULL,
    active_phase_id VARCHAR,
    active_phase_name VARCHAR,
    active_phase_status VARCHAR,
    _raw VARCHAR USING COMPRESSION zstd NOT NULL,
    _run_id VARCHAR NOT NULL,
    _loaded_at TIMESTAMPTZ NOT NULL,
    _deleted_at TIMESTAMPTZ
    -- key: (project_key, pipeline_key, flag_key, created_at)
);
INSERT INTO release_progressions__zstd BY NAME SELECT * FROM release_progressions;
DROP TABLE release_progressions;
ALTER TABLE release_progressions__zstd RENAME TO release_progressions;
