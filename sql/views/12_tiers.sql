-- Performance tiers, each named after its scheme. NULL in, NULL out: no data is no tier.
-- LaunchDarkly's lead-time tiers (on the PR-weighted mean lead time) and DORA 2023's four keys.
CREATE OR REPLACE MACRO launchdarkly_lead_time_tier(mean_h) AS
    CASE
        WHEN mean_h IS NULL THEN NULL
        WHEN mean_h < 24 THEN 'Excellent'
        WHEN mean_h <= 24 * 7 THEN 'Good'
        WHEN mean_h <= 24 * 28 THEN 'Fair'
        ELSE 'Needs attention'
    END;

-- Deployment frequency: the median 7-day period's days with a successful deployment, and
-- successful deployments per 30 days.
CREATE OR REPLACE MACRO dora_deployment_frequency_tier(median_deploy_days, per_30_days) AS
    CASE
        WHEN median_deploy_days IS NULL THEN NULL
        WHEN median_deploy_days >= 5 THEN 'elite'
        WHEN median_deploy_days >= 1 THEN 'high'
        WHEN per_30_days >= 1 THEN 'medium'
        ELSE 'low'
    END;

CREATE OR REPLACE MACRO dora_lead_time_tier(median_h) AS
    CASE
        WHEN median_h IS NULL THEN NULL
        WHEN median_h < 24 THEN 'elite'
        WHEN median_h < 24 * 7 THEN 'high'
        WHEN median_h < 24 * 30 THEN 'medium'
        ELSE 'low'
    END;

CREATE OR REPLACE MACRO dora_change_failure_tier(rate) AS
    CASE
        WHEN rate IS NULL THEN NULL
        WHEN rate <= 0.05 THEN 'elite'
        WHEN rate <= 0.10 THEN 'high'
        WHEN rate <= 0.15 THEN 'medium'
        ELSE 'low'
    END;

CREATE OR REPLACE MACRO dora_recovery_tier(median_h) AS
    CASE
        WHEN median_h IS NULL THEN NULL
        WHEN median_h < 1 THEN 'elite'
        WHEN median_h < 24 THEN 'high'
        WHEN median_h < 24 * 7 THEN 'medium'
        ELSE 'low'
    END;

-- Minimum samples for a tier: fewer lead times, ended change deployments or failures give a
-- NULL tier (the report says "too few"), not a tier drawn from one or two deployments.
CREATE OR REPLACE MACRO dora_min_lead_times() AS 5;
CREATE OR REPLACE MACRO dora_min_change_deployments() AS 5;
CREATE OR REPLACE MACRO dora_min_failures() AS 1;
