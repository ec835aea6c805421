-- Ownership and LaunchDarkly's own scores (issue 22): applications and who maintains them,
-- teams (never their members), Insights groups, one row set of Insights scores per run, and what
-- the Insights pull-request listing adds to pull_requests.

-- An application's maintainer is a member (their id only: names and emails are people's data)
-- or a team, or nobody.
CREATE TABLE applications (
    application_key VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    description VARCHAR,
    creation_date TIMESTAMPTZ,
    auto_added BOOLEAN NOT NULL,
    maintainer_member_id VARCHAR,
    maintainer_team_key VARCHAR,
    _raw VARCHAR {{zstd}} NOT NULL,
    _run_id VARCHAR NOT NULL,
    _loaded_at TIMESTAMPTZ NOT NULL,
    _deleted_at TIMESTAMPTZ
    -- key: (application_key)
);

CREATE TABLE teams (
    team_key VARCHAR NOT NULL,
    name VARCHAR,
    description VARCHAR,
    creation_date TIMESTAMPTZ,
    _raw VARCHAR {{zstd}} NOT NULL,
    _run_id VARCHAR NOT NULL,
    _loaded_at TIMESTAMPTZ NOT NULL,
    _deleted_at TIMESTAMPTZ
    -- key: (team_key)
);

CREATE TABLE insight_groups (
    group_key VARCHAR NOT NULL,
    project_key VARCHAR NOT NULL,
    environment_key VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    application_keys VARCHAR[],
    _raw VARCHAR {{zstd}} NOT NULL,
    _run_id VARCHAR NOT NULL,
    _loaded_at TIMESTAMPTZ NOT NULL,
    _deleted_at TIMESTAMPTZ
    -- key: (group_key)
);

-- LaunchDarkly shows only the current period: every run keeps its own row set, so the history
-- of its scores is ours. group_key is NULL for a whole environment's scores.
CREATE TABLE insight_scores (
    run_id VARCHAR NOT NULL,
    project_key VARCHAR NOT NULL,
    environment_key VARCHAR NOT NULL,
    group_key VARCHAR,
    metric VARCHAR NOT NULL,
    period_start TIMESTAMPTZ NOT NULL,
    period_end TIMESTAMPTZ NOT NULL,
    score BIGINT NOT NULL,
    indicator VARCHAR NOT NULL,
    indicator_min BIGINT,
    indicator_max BIGINT,
    diff_vs_last_period BIGINT,
    aggregate_of VARCHAR[],
    _loaded_at TIMESTAMPTZ NOT NULL
    -- key: (run_id, project_key, environment_key, group_key, metric)
);

-- The Insights listing names each pull request's project (open ones have no deployment).
ALTER TABLE pull_requests ADD COLUMN project_key VARCHAR;

-- What only the Insights pull-request listing knows (`expand=leadTime`).
CREATE TABLE pull_request_lead_times (
    pull_request_id VARCHAR NOT NULL,
    coding_duration_ms BIGINT,
    review_duration_ms BIGINT,
    max_wait_duration_ms BIGINT,
    avg_wait_duration_ms BIGINT,
    max_deploy_duration_ms BIGINT,
    avg_deploy_duration_ms BIGINT,
    max_total_lead_time_ms BIGINT,
    avg_total_lead_time_ms BIGINT,
    _run_id VARCHAR NOT NULL
    -- key: (pull_request_id)
);
