-- The deployments every metric counts: not archived, and not in a project or environment
-- that a full listing found deleted. Adds the UTC day and week (weeks start Monday) a
-- deployment belongs to, by its start, and what kind of deployment it is. Column docs:
-- docs/metrics.md.
-- Hours between two timestamps, to the microsecond (interval arithmetic would fold days).
CREATE OR REPLACE MACRO hours_between(from_at, to_at) AS
    date_diff('microsecond', from_at, to_at) / 3600000000.0;

CREATE OR REPLACE VIEW metric_deployments AS
SELECT
    d.deployment_id,
    d.project_key,
    d.environment_key,
    d.application_key,
    d.application_version,
    d.started_at,
    d.ended_at,
    d.status,
    d.kind,
    d.lead_time_ms,
    d.number_of_pull_requests,
    d.lines_added,
    d.lines_deleted,
    d.coding_duration_ms,
    d.review_duration_ms,
    d.wait_duration_ms,
    d.deploy_duration_ms,
    CAST(d.started_at AT TIME ZONE 'UTC' AS DATE) AS day,
    CAST(date_trunc('week', d.started_at AT TIME ZONE 'UTC') AS DATE) AS week_start,
    d.status = 'finished' AS successful,
    d.status = 'failed' AS failed,
    d.kind = 'rollback' AS rollback,
    -- A change ships new code: neither a rollback nor a redeployment of a version already
    -- shipped. The API documents no enum for kind, so an unknown kind counts as a change.
    d.kind NOT IN ('rollback', 'redeployment') AS change
FROM deployments d
WHERE NOT d.archived
    AND NOT EXISTS (
        SELECT 1 FROM projects p
        WHERE p.project_key = d.project_key AND p._deleted_at IS NOT NULL
    )
    AND NOT EXISTS (
        SELECT 1 FROM environments e
        WHERE e.project_key = d.project_key
            AND e.environment_key = d.environment_key
            AND e._deleted_at IS NOT NULL
    );

-- The data's range: the earliest and latest start of a counted deployment. Metrics measure up
-- to its end, not to now(), so a warehouse synced a while ago answers as of its data.
CREATE OR REPLACE VIEW metric_data_range AS
SELECT
    min(started_at) AS first_at,
    max(started_at) AS last_at,
    CAST(min(started_at) AT TIME ZONE 'UTC' AS DATE) AS first_day,
    CAST(max(started_at) AT TIME ZONE 'UTC' AS DATE) AS last_day
FROM metric_deployments;
