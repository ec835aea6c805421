-- Pull request cycle time: one row per pull request and environment it reached, with the
-- first successful deployment (rollbacks excluded) that shipped it there. Stages in hours:
-- review = created → merged, merge_to_deploy = merged → that deployment's end,
-- cycle = created → that deployment's end, from_previous_environment = the end of its first
-- deployment to the environment it reached just before (in time) → this one. Coding time (first commit → PR opened) is not per
-- PR in the API; deployments carry it only as an average over their PRs (coding_duration_ms).
CREATE OR REPLACE VIEW pull_request_cycle_time AS
WITH shipped AS (
    SELECT
        dpr.pull_request_id,
        m.project_key,
        m.application_key,
        m.environment_key,
        arg_min(m.deployment_id, (m.started_at, m.deployment_id)) AS first_deployment_id,
        min(m.started_at) AS first_deployment_started_at,
        arg_min(m.ended_at, (m.started_at, m.deployment_id)) AS first_deployed_at
    FROM deployment_pull_requests dpr
    JOIN metric_deployments m USING (deployment_id)
    WHERE m.successful AND NOT m.rollback
    GROUP BY ALL
)
SELECT
    s.pull_request_id,
    pr.external_id,
    pr.title,
    pr.author,
    pr.status,
    s.project_key,
    s.application_key,
    s.environment_key,
    pr.created_at,
    pr.merged_at,
    s.first_deployment_id,
    s.first_deployment_started_at,
    s.first_deployed_at,
    hours_between(pr.created_at, pr.merged_at) AS review_h,
    hours_between(pr.merged_at, s.first_deployed_at) AS merge_to_deploy_h,
    hours_between(pr.created_at, s.first_deployed_at) AS cycle_h,
    lag(s.environment_key) OVER reached AS previous_environment_key,
    hours_between(lag(s.first_deployed_at) OVER reached, s.first_deployed_at)
        AS from_previous_environment_h
FROM shipped s
JOIN pull_requests pr USING (pull_request_id)
WINDOW reached AS (
    PARTITION BY s.pull_request_id, s.project_key, s.application_key
    ORDER BY s.first_deployed_at, s.environment_key
);
