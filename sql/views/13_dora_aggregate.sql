-- The one place DORA metrics are aggregated. Every DORA view (dora_weekly, dora_summary*,
-- the roll-ups) is these macros over deployment_facts and a *scope view*, so a grouping can
-- never compute a metric differently from another.
--
-- HOW TO ADD A GROUPING (a team, an Insights group, ...):
--   1. A scope view mapping each deployment to the scope(s) it belongs to:
--        CREATE OR REPLACE VIEW dora_scope_team AS
--        SELECT m.deployment_id,
--            {'team_key': t.team_key, 'environment_key': m.environment_key} AS scope_key
--        FROM metric_deployments m JOIN <your mapping> t ON ...;
--      Columns: deployment_id, and scope_key, a STRUCT whose fields become the key columns
--      of the result. A deployment may map to several scopes (an application two teams own);
--      each scope pools its deployments. Keep environment_key in the key unless you mean to
--      pool environments: summed over dev, staging and prod, a version counts once each.
--   2. Wrappers that unnest the key (the macros take the scope view's name as a string):
--        CREATE OR REPLACE MACRO dora_summary_by_team_between(range_from, range_to) AS TABLE
--        SELECT unnest(scope_key), * EXCLUDE (scope_key)
--        FROM dora_summary_scoped('dora_scope_team', range_from, range_to);
--        CREATE OR REPLACE VIEW dora_summary_by_team AS
--        SELECT * FROM dora_summary_by_team_between(
--            (SELECT last_day - 27 FROM metric_data_range),
--            (SELECT last_day FROM metric_data_range));
--        (dora_weekly_scoped('dora_scope_team') gives the weekly rows the same way.)
--   Put them in a file after this one (sql/views run in name order). Nothing here changes.
--
-- dora_period_metrics(scope_view, anchor, days, first_day, last_day): the metrics of every
-- scope over periods of `days` days counted from `anchor`, for deployments started on
-- first_day..last_day (UTC days, both included). A period without deployments has no row;
-- the callers fill them. Column docs: docs/metrics.md.
CREATE OR REPLACE MACRO dora_period_metrics(scope_view, anchor, days, first_day, last_day)
AS TABLE
WITH picked AS (
    SELECT s.scope_key,
        CAST(anchor AS DATE)
            + CAST(((f.day - CAST(anchor AS DATE)) // CAST(days AS BIGINT)) * days AS INTEGER)
            AS period_start,
        f.*
    FROM query_table(scope_view) s
    JOIN deployment_facts f USING (deployment_id)
    WHERE f.day BETWEEN CAST(first_day AS DATE) AND CAST(last_day AS DATE)
)
SELECT
    scope_key,
    period_start,
    count(*) AS deployments,
    count(*) FILTER (WHERE successful) AS successful,
    count(*) FILTER (WHERE failed) AS failed,
    count(*) FILTER (WHERE rollback) AS rollbacks,
    count(DISTINCT day) FILTER (WHERE successful) AS deploy_days,
    count(*) FILTER (WHERE change) AS change_deployments,
    count(*) FILTER (WHERE change AND ended) AS change_deployments_ended,
    count(*) FILTER (WHERE change_failure) AS change_failures,
    count(*) FILTER (WHERE change_failure)
        / nullif(count(*) FILTER (WHERE change AND ended), 0) AS change_failure_rate,
    count(*) FILTER (WHERE rollback) / count(*) AS launchdarkly_failure_rate,
    count(*) FILTER (WHERE failed) / count(*) AS failed_rate,
    count(*) FILTER (WHERE lead_time_counted) AS lead_time_n,
    coalesce(sum(pull_requests) FILTER (WHERE lead_time_counted), 0) AS lead_time_pull_requests,
    avg(lead_time_ms) FILTER (WHERE lead_time_counted) / 3600000.0 AS lead_time_mean_h,
    sum(lead_time_ms * pull_requests) FILTER (WHERE lead_time_counted)
        / sum(pull_requests) FILTER (WHERE lead_time_counted) / 3600000.0
        AS lead_time_pr_weighted_mean_h,
    quantile_cont(lead_time_ms, 0.50) FILTER (WHERE lead_time_counted) / 3600000.0
        AS lead_time_p50_h,
    quantile_cont(lead_time_ms, 0.75) FILTER (WHERE lead_time_counted) / 3600000.0
        AS lead_time_p75_h,
    quantile_cont(lead_time_ms, 0.90) FILTER (WHERE lead_time_counted) / 3600000.0
        AS lead_time_p90_h,
    quantile_cont(lead_time_ms, 0.95) FILTER (WHERE lead_time_counted) / 3600000.0
        AS lead_time_p95_h,
    quantile_cont(lead_time_ms, 0.99) FILTER (WHERE lead_time_counted) / 3600000.0
        AS lead_time_p99_h,
    quantile_cont(coding_h, 0.5) AS coding_p50_h,
    quantile_cont(review_h, 0.5) AS review_p50_h,
    quantile_cont(wait_h, 0.5) AS wait_p50_h,
    quantile_cont(deploy_h, 0.5) AS deploy_p50_h,
    quantile_cont(change_size_lines, 0.5) AS change_size_p50_lines,
    count(*) FILTER (WHERE recovered) AS recovered,
    count(*) FILTER (WHERE change_failure AND NOT recovered) AS unrecovered,
    quantile_cont(recovery_or_age_h, 0.5) AS recovery_p50_h,
    quantile_cont(recovery_or_age_h, 0.9) AS recovery_p90_h
FROM picked
GROUP BY scope_key, period_start;

-- Per scope and UTC week (Monday): every week from the scope's first deployment week to the
-- week of the data's end, zeros where nothing happened (NULL rates and times: no data).
-- partial_week: the week is not wholly inside the data range (the first and the last weeks).
CREATE OR REPLACE MACRO dora_weekly_scoped(scope_view) AS TABLE
WITH span AS (
    SELECT first_at, last_at, first_day, last_day,
        CAST(date_trunc('week', last_at AT TIME ZONE 'UTC') AS DATE) AS last_week
    FROM metric_data_range
),
scopes AS (
    SELECT s.scope_key, min(m.week_start) AS first_week
    FROM query_table(scope_view) s
    JOIN metric_deployments m USING (deployment_id)
    GROUP BY s.scope_key
),
weeks AS (
    SELECT sc.scope_key, CAST(t.w AS DATE) AS week_start
    FROM scopes sc, span,
        unnest(generate_series(CAST(sc.first_week AS TIMESTAMP), CAST(span.last_week AS TIMESTAMP),
            INTERVAL 7 DAY)) AS t(w)
),
metrics AS (
    SELECT * FROM dora_period_metrics(scope_view, DATE '2001-01-01', 7,
        (SELECT first_day FROM metric_data_range), (SELECT last_day FROM metric_data_range))
)
SELECT
    w.scope_key,
    w.week_start,
    w.week_start < span.first_at AT TIME ZONE 'UTC'
        OR w.week_start + INTERVAL 7 DAY > span.last_at AT TIME ZONE 'UTC' AS partial_week,
    coalesce(m.deployments, 0) AS deployments,
    coalesce(m.successful, 0) AS successful,
    coalesce(m.failed, 0) AS failed,
    coalesce(m.rollbacks, 0) AS rollbacks,
    coalesce(m.deploy_days, 0) AS deploy_days,
    coalesce(m.change_deployments, 0) AS change_deployments,
    coalesce(m.change_deployments_ended, 0) AS change_deployments_ended,
    coalesce(m.change_failures, 0) AS change_failures,
    m.change_failure_rate,
    m.launchdarkly_failure_rate,
    m.failed_rate,
    coalesce(m.lead_time_n, 0) AS lead_time_n,
    coalesce(m.lead_time_pull_requests, 0) AS lead_time_pull_requests,
    m.lead_time_mean_h,
    m.lead_time_pr_weighted_mean_h,
    m.lead_time_p50_h,
    m.lead_time_p75_h,
    m.lead_time_p90_h,
    m.lead_time_p95_h,
    m.lead_time_p99_h,
    m.coding_p50_h,
    m.review_p50_h,
    m.wait_p50_h,
    m.deploy_p50_h,
    m.change_size_p50_lines,
    coalesce(m.recovered, 0) AS recovered,
    coalesce(m.unrecovered, 0) AS unrecovered,
    m.recovery_p50_h,
    coalesce(m.unrecovered, 0) > 0 AS recovery_lower_bound
FROM weeks w
CROSS JOIN span
LEFT JOIN metrics m ON m.scope_key = w.scope_key AND m.period_start = w.week_start;

-- Per scope over a range of UTC days (both ends included) and the range of equal length just
-- before it (*_prev; *_change = this range minus that one). Every scope with any deployment at
-- all has a row, with zeros and the lowest frequency tier when it had none in the range.
-- Frequency: 7-day periods counted from each range's start (the last one shorter when the
-- range is not whole weeks), zero periods included. Tiers need dora_min_*() samples.
CREATE OR REPLACE MACRO dora_summary_scoped(scope_view, range_from, range_to) AS TABLE
WITH params AS (
    SELECT CAST(range_from AS DATE) AS from_day, CAST(range_to AS DATE) AS to_day,
        CAST(CAST(range_to AS DATE) - CAST(range_from AS DATE) + 1 AS INTEGER) AS days
),
ranges AS (
    SELECT 0 AS which, from_day, to_day, days FROM params
    UNION ALL
    SELECT 1, from_day - days, from_day - 1, days FROM params
),
scopes AS (
    SELECT DISTINCT s.scope_key
    FROM query_table(scope_view) s
    JOIN metric_deployments m USING (deployment_id)
),
metrics AS (
    SELECT * FROM dora_period_metrics(scope_view,
        (SELECT from_day - days FROM params), (SELECT days FROM params),
        (SELECT from_day - days FROM params), (SELECT to_day FROM params))
),
weekly AS (
    SELECT scope_key, period_start, deploy_days FROM dora_period_metrics(scope_view,
        (SELECT from_day FROM params), 7,
        (SELECT from_day FROM params), (SELECT to_day FROM params))
    UNION ALL
    SELECT scope_key, period_start, deploy_days FROM dora_period_metrics(scope_view,
        (SELECT from_day - days FROM params), 7,
        (SELECT from_day - days FROM params), (SELECT from_day - 1 FROM params))
),
periods AS (
    SELECT sc.scope_key, r.which, r.from_day + CAST(7 * t.n AS INTEGER) AS period_start
    FROM scopes sc, ranges r, unnest(range(0, CAST((r.days - 1) // 7 + 1 AS BIGINT))) AS t(n)
),
frequency AS (
    SELECT p.scope_key, p.which,
        count(*) AS periods,
        quantile_cont(coalesce(w.deploy_days, 0), 0.5) AS median_period_deploy_days
    FROM periods p
    LEFT JOIN weekly w ON w.scope_key = p.scope_key AND w.period_start = p.period_start
    GROUP BY ALL
),
filled AS (
    SELECT sc.scope_key, r.which, r.from_day, r.to_day, r.days,
        f.periods, f.median_period_deploy_days,
        coalesce(m.successful, 0) * 30.0 / r.days AS successful_per_30_days,
        coalesce(m.deployments, 0) AS deployments,
        coalesce(m.successful, 0) AS successful,
        coalesce(m.failed, 0) AS failed,
        coalesce(m.rollbacks, 0) AS rollbacks,
        coalesce(m.deploy_days, 0) AS deploy_days,
        coalesce(m.change_deployments, 0) AS change_deployments,
        coalesce(m.change_deployments_ended, 0) AS change_deployments_ended,
        coalesce(m.change_failures, 0) AS change_failures,
        m.change_failure_rate,
        m.launchdarkly_failure_rate,
        m.failed_rate,
        coalesce(m.lead_time_n, 0) AS lead_time_n,
        coalesce(m.lead_time_pull_requests, 0) AS lead_time_pull_requests,
        m.lead_time_mean_h,
        m.lead_time_pr_weighted_mean_h,
        m.lead_time_p50_h,
        m.lead_time_p75_h,
        m.lead_time_p90_h,
        m.lead_time_p95_h,
        m.lead_time_p99_h,
        m.coding_p50_h,
        m.review_p50_h,
        m.wait_p50_h,
        m.deploy_p50_h,
        m.change_size_p50_lines,
        coalesce(m.recovered, 0) AS recovered,
        coalesce(m.unrecovered, 0) AS unrecovered,
        m.recovery_p50_h,
        m.recovery_p90_h,
        coalesce(m.unrecovered, 0) > 0 AS recovery_lower_bound
    FROM scopes sc
    CROSS JOIN ranges r
    JOIN frequency f ON f.scope_key = sc.scope_key AND f.which = r.which
    LEFT JOIN metrics m ON m.scope_key = sc.scope_key AND m.period_start = r.from_day
),
tiered AS (
    SELECT *,
        dora_deployment_frequency_tier(median_period_deploy_days, successful_per_30_days)
            AS dora_deployment_frequency_tier,
        CASE WHEN lead_time_n >= dora_min_lead_times()
            THEN dora_lead_time_tier(lead_time_p50_h) END AS dora_lead_time_tier,
        CASE WHEN change_deployments_ended >= dora_min_change_deployments()
            THEN dora_change_failure_tier(change_failure_rate) END AS dora_change_failure_tier,
        CASE WHEN change_failures >= dora_min_failures()
            THEN dora_recovery_tier(recovery_p50_h) END AS dora_recovery_tier,
        CASE WHEN lead_time_n >= dora_min_lead_times()
            THEN launchdarkly_lead_time_tier(lead_time_pr_weighted_mean_h) END
            AS launchdarkly_lead_time_tier
    FROM filled
)
SELECT
    c.scope_key,
    c.from_day AS range_from,
    c.to_day AS range_to,
    c.* EXCLUDE (scope_key, which, from_day, to_day, days),
    p.from_day AS prev_range_from,
    p.to_day AS prev_range_to,
    p.deployments AS deployments_prev,
    p.successful AS successful_prev,
    p.median_period_deploy_days AS median_period_deploy_days_prev,
    p.successful_per_30_days AS successful_per_30_days_prev,
    p.change_deployments AS change_deployments_prev,
    p.change_failures AS change_failures_prev,
    p.change_failure_rate AS change_failure_rate_prev,
    p.launchdarkly_failure_rate AS launchdarkly_failure_rate_prev,
    p.lead_time_n AS lead_time_n_prev,
    p.lead_time_mean_h AS lead_time_mean_h_prev,
    p.lead_time_pr_weighted_mean_h AS lead_time_pr_weighted_mean_h_prev,
    p.lead_time_p50_h AS lead_time_p50_h_prev,
    p.unrecovered AS unrecovered_prev,
    p.recovery_p50_h AS recovery_p50_h_prev,
    p.dora_deployment_frequency_tier AS dora_deployment_frequency_tier_prev,
    p.dora_lead_time_tier AS dora_lead_time_tier_prev,
    p.dora_change_failure_tier AS dora_change_failure_tier_prev,
    p.dora_recovery_tier AS dora_recovery_tier_prev,
    p.launchdarkly_lead_time_tier AS launchdarkly_lead_time_tier_prev,
    c.deployments - p.deployments AS deployments_change,
    c.successful - p.successful AS successful_change,
    c.median_period_deploy_days - p.median_period_deploy_days
        AS median_period_deploy_days_change,
    c.successful_per_30_days - p.successful_per_30_days AS successful_per_30_days_change,
    c.change_failure_rate - p.change_failure_rate AS change_failure_rate_change,
    c.launchdarkly_failure_rate - p.launchdarkly_failure_rate
        AS launchdarkly_failure_rate_change,
    c.lead_time_mean_h - p.lead_time_mean_h AS lead_time_mean_h_change,
    c.lead_time_pr_weighted_mean_h - p.lead_time_pr_weighted_mean_h
        AS lead_time_pr_weighted_mean_h_change,
    c.lead_time_p50_h - p.lead_time_p50_h AS lead_time_p50_h_change,
    c.recovery_p50_h - p.recovery_p50_h AS recovery_p50_h_change
FROM tiered c
JOIN tiered p ON p.scope_key = c.scope_key AND p.which = 1
WHERE c.which = 0;
