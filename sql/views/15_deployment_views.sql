-- The first, per-deployment and per-day views, on the rules of the DORA views: counted
-- deployments only (archived and deleted ones left out), lead times of changes only.

-- How often do we deploy: per project, environment, application and UTC day.
CREATE OR REPLACE VIEW deployment_frequency AS
SELECT
    project_key,
    environment_key,
    application_key,
    day,
    count(*) AS deployments,
    count(*) FILTER (WHERE successful) AS finished,
    count(*) FILTER (WHERE failed) AS failed,
    count(*) FILTER (WHERE rollback) AS rollbacks,
    count(*) FILTER (WHERE change) AS change_deployments,
    count(*) FILTER (WHERE change_failure) AS change_failures
FROM deployment_facts
GROUP BY ALL;

-- How long do changes take from first commit to deployment end: one row per deployment whose
-- lead time counts (deployment_facts.lead_time_counted: a successful change with at least one
-- pull request; rollbacks, redeployments and PR-less deployments left out), stages in hours.
CREATE OR REPLACE VIEW deployment_lead_times AS
SELECT
    f.deployment_id,
    f.project_key,
    f.environment_key,
    f.application_key,
    f.application_version,
    f.started_at,
    f.ended_at,
    f.pull_requests AS number_of_pull_requests,
    f.lead_time_h AS lead_time_hours,
    f.coding_h AS coding_hours,
    f.review_h AS review_hours,
    f.wait_h AS wait_hours,
    f.deploy_h AS deploy_hours
FROM deployment_facts f
WHERE f.lead_time_counted;

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
FROM metric_deployments d
JOIN deployment_flag_references f USING (deployment_id);
