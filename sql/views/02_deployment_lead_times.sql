-- How long do changes take from first commit to production: one row per finished deployment,
-- lead-time stages in hours.
CREATE OR REPLACE VIEW deployment_lead_times AS
SELECT
    deployment_id,
    project_key,
    environment_key,
    application_key,
    application_version,
    started_at,
    ended_at,
    number_of_pull_requests,
    lead_time_ms / 3600000.0 AS lead_time_hours,
    coding_duration_ms / 3600000.0 AS coding_hours,
    review_duration_ms / 3600000.0 AS review_hours,
    wait_duration_ms / 3600000.0 AS wait_hours,
    deploy_duration_ms / 3600000.0 AS deploy_hours
FROM deployments
WHERE status = 'finished' AND NOT archived;
