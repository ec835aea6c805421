-- flag_cleanup_candidates: the flags whose code references are gone (flag_reference_cleanup, the
-- rule in 22) with their health (flag_health): `stale` when the flag is stale in every
-- environment that counts (the project's critical ones, or all when it has none), NULL when no
-- status is known there (the flag streams are off). A stale flag whose references are gone is
-- first in line: order by `stale DESC NULLS LAST`.
CREATE OR REPLACE VIEW flag_cleanup_candidates AS
WITH counted AS (
    SELECT h.*
    FROM flag_health h
    WHERE EXISTS (
            SELECT 1 FROM environments e
            WHERE e.project_key = h.project_key AND e.environment_key = h.environment_key
                AND e.critical AND e._deleted_at IS NULL
        )
        OR NOT EXISTS (
            SELECT 1 FROM environments e
            WHERE e.project_key = h.project_key AND e.critical AND e._deleted_at IS NULL
        )
),
health AS (
    SELECT project_key, flag_key,
        bool_and(stale) AS stale,
        list(environment_key ORDER BY environment_key) FILTER (WHERE stale) AS stale_environments,
        max(last_evaluated_at) AS last_evaluated_at,
        any_value(maintainer_team_key) AS maintainer_team_key
    FROM counted
    GROUP BY ALL
)
SELECT c.*, h.stale, h.stale_environments, h.last_evaluated_at, h.maintainer_team_key
FROM flag_reference_cleanup c
LEFT JOIN health h USING (project_key, flag_key);
