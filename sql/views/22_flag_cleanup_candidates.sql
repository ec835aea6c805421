-- Flags whose code references the data shows gone: for every application that referenced the
-- flag, the net references (added − removed) shipped by successful deployments to the
-- critical environments (a project without one: all its environments) reached 0 or below, and
-- no version added any since. Each application version counts once, at its first such
-- deployment (promoting it again, or redeploying it, ships the same change). reached_zero_at
-- is when the last application's net reached 0 for good. Below 0 means references older than
-- the warehouse's history were removed. The warehouse sees only deployed changes since its
-- history starts, so a candidate is a flag worth a look, not proof (LaunchDarkly's code
-- references tell for certain). Key: (project_key, flag_key), the flag's project.
-- flag_cleanup_candidates is this rule joined with flag_health (43_flag_cleanup_health.sql).
CREATE OR REPLACE VIEW flag_reference_cleanup AS
WITH shipping AS (
    -- The environments that count: a project's critical ones, or all when it has none.
    SELECT m.*
    FROM metric_deployments m
    WHERE m.successful AND (
        EXISTS (
            SELECT 1 FROM environments e
            WHERE e.project_key = m.project_key AND e.environment_key = m.environment_key
                AND e.critical AND e._deleted_at IS NULL
        )
        OR NOT EXISTS (
            SELECT 1 FROM environments e
            WHERE e.project_key = m.project_key AND e.critical AND e._deleted_at IS NULL
        )
    )
),
versions AS (
    SELECT f.project_key AS flag_project_key, f.flag_key,
        s.project_key, s.application_key, s.application_version,
        min(s.started_at) AS shipped_at,
        any_value(f.references_added) AS added,
        any_value(f.references_removed) AS removed
    FROM deployment_flag_references f
    JOIN shipping s USING (deployment_id)
    GROUP BY ALL
),
running AS (
    SELECT *,
        sum(added - removed) OVER (
            PARTITION BY flag_project_key, flag_key, project_key, application_key
            ORDER BY shipped_at, application_version
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS net
    FROM versions
),
per_application AS (
    -- The net at the end, and when it last came down to 0 or below (NULL: above 0 at the end).
    SELECT flag_project_key, flag_key, project_key, application_key,
        arg_max(net, (shipped_at, application_version)) AS final_net,
        max(shipped_at) FILTER (WHERE net > 0) AS last_above_at,
        min(shipped_at) AS first_at
    FROM running
    GROUP BY ALL
),
reached AS (
    SELECT a.flag_project_key, a.flag_key, a.project_key, a.application_key, a.final_net,
        (SELECT min(r.shipped_at) FROM running r
         WHERE r.flag_project_key = a.flag_project_key AND r.flag_key = a.flag_key
            AND r.project_key = a.project_key AND r.application_key = a.application_key
            AND r.net <= 0
            AND (a.last_above_at IS NULL OR r.shipped_at > a.last_above_at)) AS zero_at
    FROM per_application a
),
per_flag AS (
    SELECT flag_project_key, flag_key,
        count(*) AS applications,
        bool_and(final_net <= 0) AS all_zero,
        max(zero_at) AS reached_zero_at,
        sum(final_net) AS net_references
    FROM reached
    GROUP BY ALL
),
totals AS (
    SELECT flag_project_key, flag_key,
        count(*) AS versions,
        sum(added) AS references_added,
        sum(removed) AS references_removed,
        max(shipped_at) FILTER (WHERE added > 0) AS last_added_at
    FROM versions
    GROUP BY ALL
)
SELECT
    p.flag_project_key AS project_key,
    p.flag_key,
    p.reached_zero_at,
    t.last_added_at,
    p.applications,
    t.versions,
    t.references_added,
    t.references_removed,
    p.net_references,
    EXISTS (
        SELECT 1 FROM release_progressions r
        WHERE r.project_key = p.flag_project_key
            AND r.flag_key = p.flag_key
            AND r.status = 'active'
            AND r._deleted_at IS NULL
    ) AS in_active_release
FROM per_flag p
JOIN totals t USING (flag_project_key, flag_key)
WHERE p.all_zero
    AND NOT EXISTS (
        SELECT 1 FROM versions v
        WHERE v.flag_project_key = p.flag_project_key AND v.flag_key = p.flag_key
            AND v.added > 0 AND v.shipped_at > p.reached_zero_at
    );
