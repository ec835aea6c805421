-- Which flags does each deployment touch (references added or removed by its changes).
CREATE OR REPLACE VIEW deployment_flags AS
SELECT
    d.deployment_id,
    d.project_key AS deployment_project_key,
    d.environment_key,
    d.application_key,
    d.application_version,
    d.started_at,
    f.project_key AS flag_project_key,
    f.flag_key,
    f.references_added,
    f.references_removed
FROM deployments d
JOIN deployment_flag_references f USING (deployment_id);
