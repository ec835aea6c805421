-- LaunchDarkly's own scores beside ours (issue 22), for the latest run's scores: for each scored
-- (project, environment[, Insights group]) and each of deployment frequency, failure rate and
-- lead time, LaunchDarkly's indicator and score for its period, our value over the same UTC
-- days, our tier in LaunchDarkly's scheme, and whether the two agree.
--
-- LaunchDarkly's indicators map to our LaunchDarkly-scheme tier names (docs/metrics.md):
-- excellent → Excellent, good → Good, fair → Fair, needsAttention → Needs attention;
-- notCalculated (and any other) → NULL, "no tier".
CREATE OR REPLACE MACRO launchdarkly_indicator_tier(indicator) AS
    CASE indicator
        WHEN 'excellent' THEN 'Excellent'
        WHEN 'good' THEN 'Good'
        WHEN 'fair' THEN 'Fair'
        WHEN 'needsAttention' THEN 'Needs attention'
    END;

-- Deployments per day (LaunchDarkly's "average deployments per day"): Excellent at least one a
-- day, Good at least one a week, Fair at least one a month, else Needs attention.
CREATE OR REPLACE MACRO launchdarkly_deployment_frequency_tier(per_day) AS
    CASE
        WHEN per_day IS NULL THEN NULL
        WHEN per_day >= 1 THEN 'Excellent'
        WHEN per_day >= 1 / 7 THEN 'Good'
        WHEN per_day >= 1 / 30 THEN 'Fair'
        ELSE 'Needs attention'
    END;

-- Rollbacks ÷ deployments (LaunchDarkly's deployment failure rate). LaunchDarkly publishes no
-- bands for it; these are DORA's change-failure bands under LaunchDarkly's names.
CREATE OR REPLACE MACRO launchdarkly_failure_rate_tier(rate) AS
    CASE
        WHEN rate IS NULL THEN NULL
        WHEN rate <= 0.05 THEN 'Excellent'
        WHEN rate <= 0.10 THEN 'Good'
        WHEN rate <= 0.15 THEN 'Fair'
        ELSE 'Needs attention'
    END;

-- Each scope's scores from the newest run that read them (every run keeps its own row set;
-- workers syncing different projects read different scopes).
CREATE OR REPLACE VIEW insight_scores_latest AS
SELECT * FROM insight_scores
QUALIFY run_id = max(run_id) OVER (PARTITION BY project_key, environment_key, group_key);

-- Each scored scope's deployments: the whole environment (group_key '') or a group's
-- applications in it. '' rather than NULL: scope keys are compared whole.
CREATE OR REPLACE VIEW dora_scope_insight_score AS
WITH scopes AS (
    SELECT DISTINCT project_key, environment_key, coalesce(group_key, '') AS group_key
    FROM insight_scores_latest
)
SELECT m.deployment_id,
    {'project_key': s.project_key, 'environment_key': s.environment_key,
     'group_key': s.group_key} AS scope_key
FROM metric_deployments m
JOIN scopes s ON s.project_key = m.project_key AND s.environment_key = m.environment_key
LEFT JOIN insight_groups g ON g.group_key = s.group_key
WHERE s.group_key = '' OR list_contains(g.application_keys, m.application_key);

CREATE OR REPLACE VIEW insight_scores_vs_ours AS
WITH period AS (
    SELECT
        CAST(timezone('UTC', min(period_start)) AS DATE) AS from_day,
        CAST(timezone('UTC', max(period_end)) AS DATE) - 1 AS to_day
    FROM insight_scores_latest
),
ours AS (
    SELECT unnest(scope_key), * EXCLUDE (scope_key)
    FROM dora_summary_scoped('dora_scope_insight_score',
        (SELECT from_day FROM period), (SELECT to_day FROM period))
),
theirs AS (
    SELECT *, coalesce(group_key, '') AS scope_group,
        (epoch(period_end) - epoch(period_start)) / 86400.0 AS days
    FROM insight_scores_latest
    WHERE metric IN ('deploymentFrequency', 'deploymentFailureRate', 'leadTime')
),
compared AS (
    SELECT
        t.project_key,
        t.environment_key,
        t.group_key,
        t.metric,
        t.period_start,
        t.period_end,
        t.score AS launchdarkly_score,
        t.indicator AS launchdarkly_indicator,
        launchdarkly_indicator_tier(t.indicator) AS launchdarkly_tier,
        CASE t.metric
            WHEN 'deploymentFrequency' THEN coalesce(o.deployments, 0) / t.days
            WHEN 'deploymentFailureRate' THEN o.launchdarkly_failure_rate
            ELSE o.lead_time_pr_weighted_mean_h
        END AS our_value,
        CASE t.metric
            WHEN 'deploymentFrequency' THEN 'deployments per day'
            WHEN 'deploymentFailureRate' THEN 'rollbacks per deployment'
            ELSE 'hours, mean per pull request'
        END AS our_unit,
        CASE t.metric
            WHEN 'leadTime' THEN coalesce(o.lead_time_n, 0)
            ELSE coalesce(o.deployments, 0)
        END AS our_samples,
        CASE t.metric
            WHEN 'deploymentFrequency'
                THEN launchdarkly_deployment_frequency_tier(coalesce(o.deployments, 0) / t.days)
            WHEN 'deploymentFailureRate'
                THEN launchdarkly_failure_rate_tier(o.launchdarkly_failure_rate)
            ELSE o.launchdarkly_lead_time_tier
        END AS our_tier,
        t.run_id
    FROM theirs t
    LEFT JOIN ours o
        ON o.project_key = t.project_key
        AND o.environment_key = t.environment_key
        AND o.group_key = t.scope_group
)
SELECT * EXCLUDE (run_id),
    launchdarkly_tier IS NOT DISTINCT FROM our_tier AS agrees,
    run_id
FROM compared;
