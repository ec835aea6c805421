-- DORA keys per project, environment, application and UTC week (Monday), every week from the
-- group's first to its last deployment week, with zeros (and NULL rates and times) for weeks
-- without deployments, so medians and frequencies over weeks are not inflated.
-- failure_rate = rollbacks ÷ deployments (LaunchDarkly's "deployment failure rate");
-- failed_rate = failed ÷ deployments. Lead time: the API's leadTime of successful deployments
-- that are not rollbacks, in hours, percentiles interpolated (quantile_cont).
CREATE OR REPLACE VIEW dora_weekly AS
WITH bounds AS (
    SELECT project_key, environment_key, application_key,
        min(week_start) AS first_week, max(week_start) AS last_week
    FROM metric_deployments
    GROUP BY ALL
),
weeks AS (
    SELECT project_key, environment_key, application_key, CAST(w AS DATE) AS week_start
    FROM bounds,
        unnest(generate_series(CAST(first_week AS TIMESTAMP), CAST(last_week AS TIMESTAMP),
            INTERVAL 7 DAY)) AS t(w)
),
counts AS (
    SELECT project_key, environment_key, application_key, week_start,
        count(*) AS deployments,
        count(*) FILTER (WHERE successful) AS successful,
        count(*) FILTER (WHERE failed) AS failed,
        count(*) FILTER (WHERE rollback) AS rollbacks,
        count(DISTINCT day) FILTER (WHERE successful) AS deploy_days,
        count(*) FILTER (WHERE successful AND NOT rollback) AS lead_time_n,
        avg(lead_time_ms) FILTER (WHERE successful AND NOT rollback) / 3600000.0
            AS lead_time_mean_h,
        quantile_cont(lead_time_ms, 0.50) FILTER (WHERE successful AND NOT rollback) / 3600000.0
            AS lead_time_p50_h,
        quantile_cont(lead_time_ms, 0.75) FILTER (WHERE successful AND NOT rollback) / 3600000.0
            AS lead_time_p75_h,
        quantile_cont(lead_time_ms, 0.90) FILTER (WHERE successful AND NOT rollback) / 3600000.0
            AS lead_time_p90_h,
        quantile_cont(lead_time_ms, 0.95) FILTER (WHERE successful AND NOT rollback) / 3600000.0
            AS lead_time_p95_h,
        quantile_cont(lead_time_ms, 0.99) FILTER (WHERE successful AND NOT rollback) / 3600000.0
            AS lead_time_p99_h
    FROM metric_deployments
    GROUP BY ALL
),
recovery AS (
    SELECT project_key, environment_key, application_key, week_start,
        count(recovery_h) AS recovered,
        quantile_cont(recovery_h, 0.5) AS recovery_p50_h
    FROM failed_deployment_recovery
    GROUP BY ALL
)
SELECT
    w.project_key,
    w.environment_key,
    w.application_key,
    w.week_start,
    coalesce(c.deployments, 0) AS deployments,
    coalesce(c.successful, 0) AS successful,
    coalesce(c.failed, 0) AS failed,
    coalesce(c.rollbacks, 0) AS rollbacks,
    coalesce(c.deploy_days, 0) AS deploy_days,
    c.rollbacks / c.deployments AS failure_rate,
    c.failed / c.deployments AS failed_rate,
    coalesce(c.lead_time_n, 0) AS lead_time_n,
    c.lead_time_mean_h,
    c.lead_time_p50_h,
    c.lead_time_p75_h,
    c.lead_time_p90_h,
    c.lead_time_p95_h,
    c.lead_time_p99_h,
    coalesce(r.recovered, 0) AS recovered,
    r.recovery_p50_h
FROM weeks w
LEFT JOIN counts c USING (project_key, environment_key, application_key, week_start)
LEFT JOIN recovery r USING (project_key, environment_key, application_key, week_start);
