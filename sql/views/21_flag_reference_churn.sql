-- Flag reference churn per flag and UTC week (Monday). A version's code change is counted
-- once, in the week of its first deployment (any environment): promoting it through the
-- environments ships the same references again and must not count them again.
--   deployments   = deployments that week whose changes reference the flag (every environment)
--   versions      = application versions first deployed that week that reference it
--   references_added / _removed = summed over those versions
--   pull_requests = pull requests merged (else created) that week that reference it; only
--                   filled where the API embeds flag references in pull requests.
CREATE OR REPLACE VIEW flag_version_references AS
SELECT
    f.project_key AS flag_project_key,
    f.flag_key,
    m.project_key,
    m.application_key,
    m.application_version,
    min(m.started_at) AS first_deployed_at,
    CAST(date_trunc('week', min(m.started_at) AT TIME ZONE 'UTC') AS DATE) AS week_start,
    any_value(f.references_added) AS references_added,
    any_value(f.references_removed) AS references_removed
FROM deployment_flag_references f
JOIN metric_deployments m USING (deployment_id)
GROUP BY ALL;

CREATE OR REPLACE VIEW flag_reference_churn AS
WITH deployments AS (
    SELECT f.project_key AS flag_project_key, f.flag_key, m.week_start,
        count(*) AS deployments
    FROM deployment_flag_references f
    JOIN metric_deployments m USING (deployment_id)
    GROUP BY ALL
),
versions AS (
    SELECT flag_project_key, flag_key, week_start,
        count(*) AS versions,
        sum(references_added) AS references_added,
        sum(references_removed) AS references_removed
    FROM flag_version_references
    GROUP BY ALL
),
pull_requests AS (
    SELECT r.project_key AS flag_project_key, r.flag_key,
        CAST(date_trunc('week', coalesce(pr.merged_at, pr.created_at) AT TIME ZONE 'UTC')
            AS DATE) AS week_start,
        count(DISTINCT r.pull_request_id) AS pull_requests
    FROM pull_request_flag_references r
    JOIN pull_requests pr USING (pull_request_id)
    GROUP BY ALL
)
SELECT
    flag_project_key,
    flag_key,
    week_start,
    coalesce(d.deployments, 0) AS deployments,
    coalesce(v.versions, 0) AS versions,
    coalesce(p.pull_requests, 0) AS pull_requests,
    coalesce(v.references_added, 0) AS references_added,
    coalesce(v.references_removed, 0) AS references_removed
FROM deployments d
FULL JOIN versions v USING (flag_project_key, flag_key, week_start)
FULL JOIN pull_requests p USING (flag_project_key, flag_key, week_start);
