-- DuckLake's form of migrations/0001_core_tables.sql: the same tables and columns, with the
-- payload columns VARCHAR from the start. A lake is always created new, and DuckLake cannot
-- narrow a column's type afterwards (0004's JSON → VARCHAR), so the lake skips that step.
-- tests/integration/test_ducklake_schema.py holds both backends' final schemas equal.

CREATE TABLE projects (
    project_key VARCHAR NOT NULL,
    project_id VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    tags VARCHAR[],
    include_in_snippet_by_default BOOLEAN,
    default_release_pipeline_key VARCHAR,
    _raw VARCHAR NOT NULL,
    _run_id VARCHAR NOT NULL,
    _loaded_at TIMESTAMPTZ NOT NULL,
    _deleted_at TIMESTAMPTZ
    -- key: (project_key)
);

CREATE TABLE environments (
    project_key VARCHAR NOT NULL,
    environment_key VARCHAR NOT NULL,
    environment_id VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    color VARCHAR,
    tags VARCHAR[],
    critical BOOLEAN,
    default_ttl BIGINT,
    secure_mode BOOLEAN,
    default_track_events BOOLEAN,
    require_comments BOOLEAN,
    confirm_changes BOOLEAN,
    _raw VARCHAR NOT NULL,
    _run_id VARCHAR NOT NULL,
    _loaded_at TIMESTAMPTZ NOT NULL,
    _deleted_at TIMESTAMPTZ
    -- key: (project_key, environment_key)
);

CREATE TABLE deployments (
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
    metadata VARCHAR,
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
    _raw VARCHAR NOT NULL,
    _run_id VARCHAR NOT NULL,
    _loaded_at TIMESTAMPTZ NOT NULL
    -- key: (deployment_id)
);

CREATE TABLE pull_requests (
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
    _raw VARCHAR NOT NULL,
    _run_id VARCHAR NOT NULL,
    _loaded_at TIMESTAMPTZ NOT NULL
    -- key: (pull_request_id)
);

CREATE TABLE deployment_pull_requests (
    deployment_id VARCHAR NOT NULL,
    pull_request_id VARCHAR NOT NULL,
    _run_id VARCHAR NOT NULL
    -- key: (deployment_id, pull_request_id)
);

CREATE TABLE deployment_flag_references (
    deployment_id VARCHAR NOT NULL,
    project_key VARCHAR NOT NULL,
    flag_key VARCHAR NOT NULL,
    references_added BIGINT NOT NULL,
    references_removed BIGINT NOT NULL,
    _run_id VARCHAR NOT NULL
    -- key: (deployment_id, project_key, flag_key)
);

CREATE TABLE pull_request_flag_references (
    pull_request_id VARCHAR NOT NULL,
    project_key VARCHAR NOT NULL,
    flag_key VARCHAR NOT NULL,
    references_added BIGINT NOT NULL,
    references_removed BIGINT NOT NULL,
    _run_id VARCHAR NOT NULL
    -- key: (pull_request_id, project_key, flag_key)
);

CREATE TABLE release_pipelines (
    project_key VARCHAR NOT NULL,
    pipeline_key VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    description VARCHAR,
    created_at TIMESTAMPTZ NOT NULL,
    tags VARCHAR[],
    version BIGINT,
    is_project_default BOOLEAN,
    is_legacy BOOLEAN,
    phase_count BIGINT NOT NULL,
    _raw VARCHAR NOT NULL,
    _run_id VARCHAR NOT NULL,
    _loaded_at TIMESTAMPTZ NOT NULL,
    _deleted_at TIMESTAMPTZ
    -- key: (project_key, pipeline_key)
);

CREATE TABLE release_pipeline_phases (
    project_key VARCHAR NOT NULL,
    pipeline_key VARCHAR NOT NULL,
    phase_id VARCHAR NOT NULL,
    phase_index BIGINT NOT NULL,
    name VARCHAR NOT NULL,
    environment_keys VARCHAR[],
    audiences VARCHAR,
    _run_id VARCHAR NOT NULL
    -- key: (project_key, pipeline_key, phase_id)
);

CREATE TABLE release_progressions (
    project_key VARCHAR NOT NULL,
    pipeline_key VARCHAR NOT NULL,
    flag_key VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    completed_at TIMESTAMPTZ,
    status VARCHAR NOT NULL,
    active_phase_id VARCHAR,
    active_phase_name VARCHAR,
    active_phase_status VARCHAR,
    _raw VARCHAR NOT NULL,
    _run_id VARCHAR NOT NULL,
    _loaded_at TIMESTAMPTZ NOT NULL,
    _deleted_at TIMESTAMPTZ
    -- key: (project_key, pipeline_key, flag_key, created_at)
);

CREATE TABLE release_progression_snapshots (
    run_id VARCHAR NOT NULL,
    project_key VARCHAR NOT NULL,
    pipeline_key VARCHAR NOT NULL,
    flag_key VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    observed_at TIMESTAMPTZ NOT NULL,
    status VARCHAR NOT NULL,
    active_phase_id VARCHAR,
    active_phase_name VARCHAR,
    completed_at TIMESTAMPTZ
    -- key: (run_id, project_key, pipeline_key, flag_key, created_at)
);

CREATE TABLE release_policies (
    project_key VARCHAR NOT NULL,
    policy_id VARCHAR NOT NULL,
    policy_key VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    rank BIGINT NOT NULL,
    release_method VARCHAR NOT NULL,
    scope_environment_keys VARCHAR[],
    scope_flag_tag_keys VARCHAR[],
    rollout_context_kind_key VARCHAR,
    min_sample_size BIGINT,
    rollback_on_regression BOOLEAN,
    metric_keys VARCHAR[],
    metric_group_keys VARCHAR[],
    stages STRUCT(allocation BIGINT, duration_ms BIGINT)[],
    _raw VARCHAR NOT NULL,
    _run_id VARCHAR NOT NULL,
    _loaded_at TIMESTAMPTZ NOT NULL,
    _deleted_at TIMESTAMPTZ
    -- key: (project_key, policy_id)
);
