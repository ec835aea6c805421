-- The four keys per maintainer team and per Insights group (issue 22), on the one aggregation
-- of 13_dora_aggregate.sql: each scope pools its deployments, never averages application rows.
--
-- Team: an application's *current* maintainer team (the `applications` table as last synced),
-- so a moved application takes its whole history to its new team. Deployments of applications
-- with no team (a member maintains them, nobody does, or the application is not synced) are
-- the team `(no team)`. Environment stays in the key: a version deployed to staging and to
-- production is two deployments of different meaning.
CREATE OR REPLACE VIEW dora_scope_team AS
SELECT m.deployment_id,
    {'team_key': coalesce(a.maintainer_team_key, '(no team)'),
     'environment_key': m.environment_key} AS scope_key
FROM metric_deployments m
LEFT JOIN applications a
    ON a.application_key = m.application_key AND a._deleted_at IS NULL;

CREATE OR REPLACE MACRO dora_summary_by_team_between(range_from, range_to) AS TABLE
SELECT unnest(scope_key), * EXCLUDE (scope_key)
FROM dora_summary_scoped('dora_scope_team', range_from, range_to);

CREATE OR REPLACE VIEW dora_summary_by_team AS
SELECT * FROM dora_summary_by_team_between(
    (SELECT last_day - 27 FROM metric_data_range), (SELECT last_day FROM metric_data_range));

-- Insights group: the deployments of its applications in its project and environment.
CREATE OR REPLACE VIEW dora_scope_insight_group AS
SELECT m.deployment_id, {'group_key': g.group_key} AS scope_key
FROM metric_deployments m
JOIN insight_groups g
    ON g._deleted_at IS NULL
    AND g.project_key = m.project_key
    AND g.environment_key = m.environment_key
    AND list_contains(g.application_keys, m.application_key);

CREATE OR REPLACE MACRO dora_summary_by_group_between(range_from, range_to) AS TABLE
SELECT unnest(scope_key), * EXCLUDE (scope_key)
FROM dora_summary_scoped('dora_scope_insight_group', range_from, range_to);

CREATE OR REPLACE VIEW dora_summary_by_group AS
SELECT * FROM dora_summary_by_group_between(
    (SELECT last_day - 27 FROM metric_data_range), (SELECT last_day FROM metric_data_range));
