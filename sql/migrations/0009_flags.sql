-- Flags, flag statuses and flag events (issue 21). One file for both backends: `{{zstd}}` is
-- filled in per backend (etl/warehouse/ddl.py). Keys are declared in comments, as in 0001.

CREATE TABLE flags (
    project_key VARCHAR NOT NULL,
    flag_key VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    description VARCHAR,
    temporary BOOLEAN NOT NULL,
    archived BOOLEAN NOT NULL,
    archived_at TIMESTAMPTZ,
    deprecated BOOLEAN NOT NULL,
    deprecated_at TIMESTAMPTZ,
    creation_date TIMESTAMPTZ NOT NULL,
    maintainer_id VARCHAR,
    maintainer_team_key VARCHAR,
    maintainer_team_name VARCHAR,
    tags VARCHAR[] NOT NULL,
    version BIGINT NOT NULL,
    _raw VARCHAR NOT NULL,
    _run_id VARCHAR NOT NULL,
    _loaded_at TIMESTAMPTZ NOT NULL,
    _deleted_at TIMESTAMPTZ
    -- key: (project_key, flag_key)
);

-- A flag's state in each environment (the flag's `environments` map), replaced with the flag.
CREATE TABLE flag_environments (
    project_key VARCHAR NOT NULL,
    flag_key VARCHAR NOT NULL,
    environment_key VARCHAR NOT NULL,
    is_on BOOLEAN,
    archived BOOLEAN,
    last_modified TIMESTAMPTZ,
    version BIGINT,
    _run_id VARCHAR NOT NULL
    -- key: (project_key, flag_key, environment_key)
);

CREATE TABLE flag_statuses (
    project_key VARCHAR NOT NULL,
    environment_key VARCHAR NOT NULL,
    flag_key VARCHAR NOT NULL,
    status VARCHAR NOT NULL,          -- new | active | inactive | launched
    last_requested TIMESTAMPTZ,
    _raw VARCHAR NOT NULL,
    _run_id VARCHAR NOT NULL,
    _loaded_at TIMESTAMPTZ NOT NULL,
    _deleted_at TIMESTAMPTZ
    -- key: (project_key, environment_key, flag_key)
);

-- Every run's view of every status: "launched for at least 7 days" is read from here.
CREATE TABLE flag_status_history (
    run_id VARCHAR NOT NULL,
    observed_at TIMESTAMPTZ NOT NULL,
    project_key VARCHAR NOT NULL,
    environment_key VARCHAR NOT NULL,
    flag_key VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    last_requested TIMESTAMPTZ
    -- key: (run_id, project_key, environment_key, flag_key)
);

CREATE TABLE flag_events (
    event_id VARCHAR NOT NULL,
    project_key VARCHAR NOT NULL,
    environment_key VARCHAR NOT NULL,
    flag_key VARCHAR NOT NULL,
    event_type VARCHAR NOT NULL,
    event_time TIMESTAMPTZ NOT NULL,
    description VARCHAR NOT NULL,
    impact_size VARCHAR,              -- none | small | medium | large
    impact_percentage DOUBLE,
    impact_reason VARCHAR,
    audit_log_entry_id VARCHAR,
    member_id VARCHAR,
    project_id VARCHAR NOT NULL,
    environment_id VARCHAR,
    _raw VARCHAR {{zstd}} NOT NULL,
    _run_id VARCHAR NOT NULL,
    _loaded_at TIMESTAMPTZ NOT NULL
    -- key: (event_id)
);

-- The experiments a flag event is tied to (`expand=experiments`), replaced with the event.
CREATE TABLE flag_event_experiments (
    event_id VARCHAR NOT NULL,
    experiment_key VARCHAR NOT NULL,
    experiment_name VARCHAR,
    iteration_id VARCHAR,
    iteration_status VARCHAR,
    iteration_started_at TIMESTAMPTZ,
    iteration_ended_at TIMESTAMPTZ,
    _run_id VARCHAR NOT NULL
    -- key: (event_id, experiment_key)
);

-- The incremental windows of every stream read by time, newest first (deployments, flag events):
-- `stream` joins the key. Rebuilt, not altered: the first releases' PRIMARY KEY on a DuckDB
-- file has no `stream` and cannot be changed in place (a lake has no constraint to drop).
CREATE TABLE sync_windows__streams (
    stream VARCHAR NOT NULL,
    project_key VARCHAR NOT NULL,
    environment_key VARCHAR NOT NULL,
    from_at TIMESTAMPTZ NOT NULL,
    to_at TIMESTAMPTZ NOT NULL,
    planned_run_id VARCHAR NOT NULL,
    done_run_id VARCHAR,
    remaining_to TIMESTAMPTZ
    -- key: (stream, project_key, environment_key, from_at, to_at), kept by etl/state.py
);
INSERT INTO sync_windows__streams BY NAME SELECT 'deployments' AS stream, * FROM sync_windows;
DROP TABLE sync_windows;
ALTER TABLE sync_windows__streams RENAME TO sync_windows;

ALTER TABLE sync_reverify ADD COLUMN stream VARCHAR;
UPDATE sync_reverify SET stream = 'deployments';
