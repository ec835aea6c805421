-- Pull request cycle time: one row per pull request and environment it reached, with the
-- first successful deployment (rollbacks excluded) that shipped it there. Stages in hours:
-- review = created → merged, merge_to_deploy = merged → that deployment's end,
-- cycle = created → that deployment's end, from_previous_environment = the end of its first
-- deployment to the environment it reached just before (in time) → this one. Coding time (first commit → PR opened) is not per
-- PR in the API; deployments carry it only as an average over their PRs (coding_duration_ms).
-- Pull requests that reached no environment are listed once each too (the Insights listing
-- brings them), without an environment: open ones with `open_age_h`, their age at the data's
-- end (the newest deployment start or pull request creation), closed ones never merged with
-- `closed_unmerged`. Their stage columns are NULL. A shipped pull request still open (a
-- preview deployment) has its age too.
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
),
reached AS (
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
    )
),
unshipped AS (
    SELECT pr.pull_request_id, pr.external_id, pr.title, pr.author, pr.status, pr.project_key,
        pr.created_at, pr.merged_at
    FROM pull_requests pr
    WHERE pr.pull_request_id NOT IN (SELECT pull_request_id FROM shipped)
),
data_end AS (
    SELECT greatest((SELECT max(started_at) FROM metric_deployments),
        (SELECT max(created_at) FROM pull_requests)) AS at
),
listed AS (
    SELECT * FROM reached
    UNION ALL BY NAME
    SELECT * FROM unshipped
)
SELECT l.*,
    CASE WHEN l.status = 'open' THEN hours_between(l.created_at, d.at) END AS open_age_h,
    l.status = 'closed' AND l.merged_at IS NULL AS closed_unmerged
FROM listed l, data_end d;
