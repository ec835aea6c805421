-- One row per counted deployment with everything the DORA views aggregate: is it a change,
-- did it succeed, fail or get rolled back, does its lead time count, and for a change
-- failure, what recovered it. dora_weekly, the summaries and every roll-up aggregate this one
-- view (13_dora_aggregate.sql), so they cannot drift apart. Definitions: docs/metrics.md.
--   rolled_back    = the latest successful non-rollback deployment of the same project,
--                    environment and application that started before a successful rollback
--   change_failure = a change (not a rollback or redeployment) that failed or was rolled back
--   lead_time_counted = a successful change with at least one pull request (the leadTime of
--                    a deployment without one is only its own duration)
--   recovered_by_* = for a change failure F, the successful deployment R (any kind) of the
--                    same project, environment and application, R ≠ F, started no earlier
--                    than F and ended after F ended, that ended first
--   recovery_h     = F's start → R's end; age_h = F's start → the data's end while no R yet;
--                    recovery_or_age_h = whichever applies (a lower bound when unrecovered)
CREATE OR REPLACE VIEW deployment_facts AS
WITH counted AS MATERIALIZED (
    -- Read once: metric_deployments' deleted-scope checks would run for every use below.
    SELECT * FROM metric_deployments
),
rolled_back AS (
    SELECT t.deployment_id,
        arg_min(r.deployment_id, (r.started_at, r.deployment_id))
            AS rolled_back_by_deployment_id
    FROM (SELECT * FROM counted WHERE rollback AND successful) r
    ASOF JOIN (SELECT * FROM counted WHERE successful AND NOT rollback) t
        ON t.project_key = r.project_key
        AND t.environment_key = r.environment_key
        AND t.application_key = r.application_key
        AND r.started_at > t.started_at
    GROUP BY t.deployment_id
),
base AS (
    SELECT m.*,
        m.status IN ('finished', 'failed') AS ended,
        rb.rolled_back_by_deployment_id IS NOT NULL AS rolled_back,
        rb.rolled_back_by_deployment_id,
        m.change AND (m.failed OR rb.rolled_back_by_deployment_id IS NOT NULL) AS change_failure,
        m.successful AND m.change AND m.number_of_pull_requests > 0 AS lead_time_counted
    FROM counted m
    LEFT JOIN rolled_back rb USING (deployment_id)
),
recovery AS (
    SELECT f.deployment_id,
        arg_min(r.deployment_id, (r.ended_at, r.started_at, r.deployment_id))
            AS recovered_by_deployment_id,
        arg_min(r.kind, (r.ended_at, r.started_at, r.deployment_id)) AS recovered_by_kind,
        min(r.ended_at) AS recovered_at
    FROM base f
    JOIN counted r
        ON r.project_key = f.project_key
        AND r.environment_key = f.environment_key
        AND r.application_key = f.application_key
        AND r.deployment_id <> f.deployment_id
        AND r.started_at >= f.started_at
        AND r.ended_at > coalesce(f.ended_at, f.started_at)
    WHERE f.change_failure AND r.successful
    GROUP BY f.deployment_id
)
SELECT
    b.deployment_id,
    b.project_key,
    b.environment_key,
    b.application_key,
    b.application_version,
    b.started_at,
    b.ended_at,
    b.status,
    b.kind,
    b.day,
    b.week_start,
    b.successful,
    b.failed,
    b.rollback,
    b.change,
    b.ended,
    b.rolled_back,
    b.rolled_back_by_deployment_id,
    b.change_failure,
    b.number_of_pull_requests AS pull_requests,
    b.lead_time_ms,
    b.lead_time_counted,
    CASE WHEN b.lead_time_counted THEN b.lead_time_ms / 3600000.0 END AS lead_time_h,
    CASE WHEN b.lead_time_counted THEN b.coding_duration_ms / 3600000.0 END AS coding_h,
    CASE WHEN b.lead_time_counted THEN b.review_duration_ms / 3600000.0 END AS review_h,
    CASE WHEN b.lead_time_counted THEN b.wait_duration_ms / 3600000.0 END AS wait_h,
    CASE WHEN b.lead_time_counted THEN b.deploy_duration_ms / 3600000.0 END AS deploy_h,
    CASE WHEN b.lead_time_counted THEN b.lines_added + b.lines_deleted END AS change_size_lines,
    r.recovered_by_deployment_id,
    r.recovered_by_kind,
    r.recovered_at,
    CASE WHEN b.change_failure THEN r.recovered_at IS NOT NULL END AS recovered,
    hours_between(b.started_at, r.recovered_at) AS recovery_h,
    CASE WHEN b.change_failure AND r.recovered_at IS NULL
        THEN hours_between(b.started_at, dr.last_at) END AS age_h,
    CASE WHEN b.change_failure
        THEN hours_between(b.started_at, coalesce(r.recovered_at, dr.last_at)) END
        AS recovery_or_age_h
FROM base b
CROSS JOIN (
    SELECT max(started_at) AS last_at FROM counted
) dr
LEFT JOIN recovery r USING (deployment_id);

-- One row per change failure (failed, or rolled back) and what recovered it; recovery_h is
-- NULL while nothing has, and age_h says how long it has been broken at the data's end.
CREATE OR REPLACE VIEW failed_deployment_recovery AS
SELECT
    project_key,
    environment_key,
    application_key,
    deployment_id,
    application_version,
    kind,
    started_at,
    ended_at AS failed_at,
    failed,
    rolled_back,
    rolled_back_by_deployment_id,
    day,
    week_start,
    recovered_by_deployment_id,
    recovered_by_kind,
    recovered_at,
    recovered,
    recovery_h,
    age_h,
    recovery_or_age_h
FROM deployment_facts
WHERE change_failure;
