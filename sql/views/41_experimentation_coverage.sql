-- LaunchDarkly's experimentation coverage (Insights): the share of impactful flag changes (impact
-- not `none`) tied to at least one experiment, per project, environment and UTC week (Monday).
-- A week without impactful changes has a NULL share (never a perfect 0 or 100 %); weeks span
-- the pair's first to last flag event week, as in release_frequency_weekly.
CREATE OR REPLACE VIEW experimentation_coverage_weekly AS
WITH tied AS (
    SELECT DISTINCT event_id FROM flag_event_experiments
),
counts AS (
    SELECT e.project_key, e.environment_key,
        CAST(date_trunc('week', e.event_time AT TIME ZONE 'UTC') AS DATE) AS week_start,
        count(*) AS releases,
        count(t.event_id) AS with_experiment
    FROM flag_events e
    LEFT JOIN tied t USING (event_id)
    WHERE e.impact_size IN ('small', 'medium', 'large')
    GROUP BY ALL
)
SELECT
    w.project_key,
    w.environment_key,
    w.week_start,
    w.releases,
    coalesce(c.with_experiment, 0) AS with_experiment,
    coalesce(c.with_experiment, 0) / nullif(w.releases, 0) AS coverage
FROM release_frequency_weekly w
LEFT JOIN counts c USING (project_key, environment_key, week_start);
