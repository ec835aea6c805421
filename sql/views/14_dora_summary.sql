-- The four keys per project, environment and application over a chosen range of UTC days,
-- both ends included: SELECT * FROM dora_summary_between(DATE '2026-01-01', DATE '2026-01-28').
-- Deployments belong to the range by their start. Deployment frequency looks at 7-day
-- periods counted from range_from (the last one shorter when the range is not whole weeks),
-- zero periods included. Only groups with a deployment in the range have a row.
CREATE OR REPLACE MACRO dora_summary_between(range_from, range_to) AS TABLE
WITH params AS (
    SELECT CAST(range_from AS DATE) AS from_day, CAST(range_to AS DATE) AS to_day
),
picked AS (
    SELECT m.*, (m.day - p.from_day) // 7 AS period
    FROM metric_deployments m, params p
    WHERE m.day BETWEEN p.from_day AND p.to_day
),
groups AS (
    SELECT project_key, environment_key, application_key,
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
        quantile_cont(lead_time_ms, 0.90) FILTER (WHERE successful AND NOT rollback) / 3600000.0
            AS lead_time_p90_h
    FROM picked
    GROUP BY ALL
),
periods AS (
    SELECT g.project_key, g.environment_key, g.application_key, t.period
    FROM groups g, params p,
        unnest(range(0, CAST((p.to_day - p.from_day) // 7 + 1 AS BIGINT))) AS t(period)
),
period_days AS (
    SELECT pe.project_key, pe.environment_key, pe.application_key, pe.period,
        count(DISTINCT pi.day) FILTER (WHERE pi.successful) AS deploy_days
    FROM periods pe
    LEFT JOIN picked pi USING (project_key, environment_key, application_key, period)
    GROUP BY ALL
),
frequency AS (
    SELECT project_key, environment_key, application_key,
        count(*) AS periods,
        quantile_cont(deploy_days, 0.5) AS median_period_deploy_days
    FROM period_days
    GROUP BY ALL
),
recovery AS (
    SELECT r.project_key, r.environment_key, r.application_key,
        count(r.recovery_h) AS recovered,
        quantile_cont(r.recovery_h, 0.5) AS recovery_p50_h
    FROM failed_deployment_recovery r, params p
    WHERE r.day BETWEEN p.from_day AND p.to_day
    GROUP BY ALL
)
SELECT
    g.project_key,
    g.environment_key,
    g.application_key,
    p.from_day AS range_from,
    p.to_day AS range_to,
    g.deployments,
    g.successful,
    g.failed,
    g.rollbacks,
    g.deploy_days,
    f.periods,
    f.median_period_deploy_days,
    g.successful * 30.0 / (p.to_day - p.from_day + 1) AS successful_per_30_days,
    g.rollbacks / g.deployments AS failure_rate,
    g.failed / g.deployments AS failed_rate,
    g.lead_time_n,
    g.lead_time_mean_h,
    g.lead_time_p50_h,
    g.lead_time_p90_h,
    coalesce(r.recovered, 0) AS recovered,
    g.failed - coalesce(r.recovered, 0) AS unrecovered,
    r.recovery_p50_h,
    dora_deployment_frequency_tier(f.median_period_deploy_days,
        g.successful * 30.0 / (p.to_day - p.from_day + 1)) AS dora_deployment_frequency_tier,
    dora_lead_time_tier(g.lead_time_p50_h) AS dora_lead_time_tier,
    dora_change_failure_tier(g.rollbacks / g.deployments) AS dora_change_failure_tier,
    dora_recovery_tier(r.recovery_p50_h) AS dora_recovery_tier,
    launchdarkly_lead_time_tier(g.lead_time_mean_h) AS launchdarkly_lead_time_tier
FROM groups g
CROSS JOIN params p
JOIN frequency f USING (project_key, environment_key, application_key)
LEFT JOIN recovery r USING (project_key, environment_key, application_key);

-- The last 28 days of data: the range ends on the day of the newest deployment (not today),
-- so a warehouse synced a while ago still summarises its last four weeks.
CREATE OR REPLACE VIEW dora_summary AS
SELECT * FROM dora_summary_between(
    (SELECT max(day) - 27 FROM metric_deployments),
    (SELECT max(day) FROM metric_deployments)
);
