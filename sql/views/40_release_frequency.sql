-- LaunchDarkly's release frequency (Insights: "impactful flag changes"): flag events whose impact
-- is not `none`, per project, environment and UTC week (Monday), by impact size, with the rate
-- per day (÷ 7). Every week from the pair's first to its last flag event week is a row, with
-- zeros, so averages over weeks are not inflated. An event without an impact size counts in
-- `flag_events` only. Sizes are LaunchDarkly's: small (0–20 %), medium (20–80 %), large (> 80 %).
CREATE OR REPLACE VIEW release_frequency_weekly AS
WITH events AS (
    SELECT project_key, environment_key,
        CAST(date_trunc('week', event_time AT TIME ZONE 'UTC') AS DATE) AS week_start,
        impact_size
    FROM flag_events
),
bounds AS (
    SELECT project_key, environment_key, min(week_start) AS first_week, max(week_start) AS last_week
    FROM events
    GROUP BY ALL
),
weeks AS (
    SELECT project_key, environment_key, CAST(w AS DATE) AS week_start
    FROM bounds,
        unnest(generate_series(CAST(first_week AS TIMESTAMP), CAST(last_week AS TIMESTAMP),
            INTERVAL 7 DAY)) AS t(w)
),
counts AS (
    SELECT project_key, environment_key, week_start,
        count(*) AS flag_events,
        count(*) FILTER (WHERE impact_size IN ('small', 'medium', 'large')) AS releases,
        count(*) FILTER (WHERE impact_size = 'small') AS small,
        count(*) FILTER (WHERE impact_size = 'medium') AS medium,
        count(*) FILTER (WHERE impact_size = 'large') AS large
    FROM events
    GROUP BY ALL
)
SELECT
    w.project_key,
    w.environment_key,
    w.week_start,
    coalesce(c.releases, 0) AS releases,
    coalesce(c.small, 0) AS small,
    coalesce(c.medium, 0) AS medium,
    coalesce(c.large, 0) AS large,
    coalesce(c.flag_events, 0) AS flag_events,
    coalesce(c.releases, 0) / 7.0 AS releases_per_day
FROM weeks w
LEFT JOIN counts c USING (project_key, environment_key, week_start);
