-- The Insights pull-request listing is read by window of `created_at` per project, on the
-- planner deployments use (etl/state.py, etl/extract/teams.py: PULL_REQUESTS_TIMELINE), which
-- counts a timeline's history per (project, environment): the pull requests' windows have the
-- environment key '(pull requests)'.
CREATE OR REPLACE VIEW pull_request_timeline AS
SELECT project_key, '(pull requests)' AS environment_key, created_at, status
FROM pull_requests
WHERE project_key IS NOT NULL;
