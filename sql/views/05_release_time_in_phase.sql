-- Time in phase, from the per-run snapshots: when each release was first and last seen in
-- each phase. Resolution is the sync interval.
CREATE OR REPLACE VIEW release_time_in_phase AS
SELECT
    project_key,
    pipeline_key,
    flag_key,
    created_at,
    active_phase_id,
    any_value(active_phase_name) AS phase_name,
    min(observed_at) AS first_seen_at,
    max(observed_at) AS last_seen_at,
    max(observed_at) - min(observed_at) AS observed_duration
FROM release_progression_snapshots
WHERE status = 'active'
GROUP BY project_key, pipeline_key, flag_key, created_at, active_phase_id;
