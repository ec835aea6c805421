-- Failed deployment recovery (DORA 2023): for each failed deployment, the next successful
-- deployment (any kind, rollbacks included) of the same application in the same environment
-- that started after it, and the hours from the failure's start to that deployment's end.
-- NULL recovery while none has succeeded since.
CREATE OR REPLACE VIEW failed_deployment_recovery AS
WITH failed AS (
    SELECT * FROM metric_deployments WHERE failed
),
recovering AS (
    SELECT project_key, environment_key, application_key, deployment_id, kind, started_at,
        ended_at
    FROM metric_deployments
    WHERE successful
)
SELECT
    f.project_key,
    f.environment_key,
    f.application_key,
    f.deployment_id,
    f.application_version,
    f.started_at,
    f.ended_at AS failed_at,
    f.day,
    f.week_start,
    r.deployment_id AS recovered_by_deployment_id,
    r.kind AS recovered_by_kind,
    r.ended_at AS recovered_at,
    hours_between(f.started_at, r.ended_at) AS recovery_h
FROM failed f
ASOF LEFT JOIN recovering r
    ON r.project_key = f.project_key
    AND r.environment_key = f.environment_key
    AND r.application_key = f.application_key
    AND r.started_at > f.started_at;
