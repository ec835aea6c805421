-- The deployments every metric counts: not archived, and not in a project or environment
-- that a full listing found deleted. Adds the UTC day and week (weeks start Monday) a
-- deployment belongs to, by its start. Column docs: docs/metrics.md.
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
    CAST(d.started_at AT TIME ZONE 'UTC' AS DATE) AS day,
    CAST(date_trunc('week', d.started_at AT TIME ZONE 'UTC') AS DATE) AS week_start,
    d.status = 'finished' AS successful,
    d.status = 'failed' AS failed,
    d.kind = 'rollback' AS rollback
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
