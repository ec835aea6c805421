-- The DORA views: per application, and roll-ups that pool deployments (never average rows):
-- per project and environment, and organisation-wide per environment. Each is a scope view
-- (deployment → scope_key) and thin wrappers over the macros of 13_dora_aggregate.sql, which
-- says how to add another grouping. Environments stay apart: summed over dev, staging and
-- prod, a version would count once per environment.
CREATE OR REPLACE VIEW dora_scope_application AS
SELECT deployment_id,
    {'project_key': project_key, 'environment_key': environment_key,
     'application_key': application_key} AS scope_key
FROM metric_deployments;

CREATE OR REPLACE VIEW dora_scope_project AS
SELECT deployment_id,
    {'project_key': project_key, 'environment_key': environment_key} AS scope_key
FROM metric_deployments;

CREATE OR REPLACE VIEW dora_scope_organisation AS
SELECT deployment_id, {'environment_key': environment_key} AS scope_key
FROM metric_deployments;

-- Per project, environment, application and week.
CREATE OR REPLACE VIEW dora_weekly AS
SELECT unnest(scope_key), * EXCLUDE (scope_key)
FROM dora_weekly_scoped('dora_scope_application');

-- SELECT * FROM dora_summary_between(DATE '2026-01-01', DATE '2026-01-28')
CREATE OR REPLACE MACRO dora_summary_between(range_from, range_to) AS TABLE
SELECT unnest(scope_key), * EXCLUDE (scope_key)
FROM dora_summary_scoped('dora_scope_application', range_from, range_to);

CREATE OR REPLACE MACRO dora_summary_by_project_between(range_from, range_to) AS TABLE
SELECT unnest(scope_key), * EXCLUDE (scope_key)
FROM dora_summary_scoped('dora_scope_project', range_from, range_to);

CREATE OR REPLACE MACRO dora_summary_by_organisation_between(range_from, range_to) AS TABLE
SELECT unnest(scope_key), * EXCLUDE (scope_key)
FROM dora_summary_scoped('dora_scope_organisation', range_from, range_to);

-- The last 28 days of data: the range ends on the day of the newest deployment (not today),
-- so a warehouse synced a while ago still summarises its last four weeks.
CREATE OR REPLACE VIEW dora_summary AS
SELECT * FROM dora_summary_between(
    (SELECT last_day - 27 FROM metric_data_range), (SELECT last_day FROM metric_data_range));

CREATE OR REPLACE VIEW dora_summary_by_project AS
SELECT * FROM dora_summary_by_project_between(
    (SELECT last_day - 27 FROM metric_data_range), (SELECT last_day FROM metric_data_range));

CREATE OR REPLACE VIEW dora_summary_by_organisation AS
SELECT * FROM dora_summary_by_organisation_between(
    (SELECT last_day - 27 FROM metric_data_range), (SELECT last_day FROM metric_data_range));
