-- Must return no rows: every table's primary key is unique (DuckDB enforces it; this check
-- guards against a future table created without one).
SELECT 'deployments' AS table_name, deployment_id AS key, count(*) AS n
FROM deployments GROUP BY ALL HAVING count(*) > 1
UNION ALL
SELECT 'pull_requests', pull_request_id, count(*)
FROM pull_requests GROUP BY ALL HAVING count(*) > 1
UNION ALL
SELECT 'release_progressions', project_key || '/' || pipeline_key || '/' || flag_key, count(*)
FROM release_progressions GROUP BY project_key, pipeline_key, flag_key, created_at
HAVING count(*) > 1;
