-- How often do we deploy: per project, environment, application and UTC day.
CREATE OR REPLACE VIEW deployment_frequency AS
SELECT
    project_key,
    environment_key,
    application_key,
    CAST(started_at AT TIME ZONE 'UTC' AS DATE) AS day,
    count(*) AS deployments,
    count(*) FILTER (WHERE status = 'finished') AS finished,
    count(*) FILTER (WHERE status = 'failed') AS failed,
    count(*) FILTER (WHERE kind = 'rollback') AS rollbacks
FROM deployments
WHERE NOT archived
GROUP BY ALL;
