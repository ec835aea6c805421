-- Views that newer ones replaced (README, "Views"): dropped from warehouses made before.
--   release_pipeline_progress → release_funnel (active_now)
--   release_time_in_phase     → release_phase_durations
DROP VIEW IF EXISTS release_pipeline_progress;
DROP VIEW IF EXISTS release_time_in_phase;
