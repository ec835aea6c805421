-- Flags whose code references the data shows removed with none added since. Rule: among the
-- application versions whose deployments reference the flag (each at its first deployment,
-- any environment), the latest one that removed references comes after the latest one that
-- added any, and added none itself. The warehouse sees only changes that were deployed, and
-- only since the start of its history: references older than that are not counted, so a
-- candidate is a flag worth a look (LaunchDarkly's code references tell for certain).
CREATE OR REPLACE VIEW flag_cleanup_candidates AS
WITH per_flag AS (
    SELECT
        flag_project_key,
        flag_key,
        max(first_deployed_at) FILTER (WHERE references_removed > 0) AS last_removed_at,
        max(first_deployed_at) FILTER (WHERE references_added > 0) AS last_added_at,
        sum(references_added) AS references_added,
        sum(references_removed) AS references_removed,
        count(*) AS versions
    FROM flag_version_references
    GROUP BY ALL
)
SELECT
    flag_project_key,
    flag_key,
    last_removed_at,
    last_added_at,
    references_added,
    references_removed,
    versions,
    EXISTS (
        SELECT 1 FROM release_progressions r
        WHERE r.project_key = per_flag.flag_project_key
            AND r.flag_key = per_flag.flag_key
            AND r.status = 'active'
            AND r._deleted_at IS NULL
    ) AS in_active_release
FROM per_flag
WHERE last_removed_at IS NOT NULL
    AND (last_added_at IS NULL OR last_added_at < last_removed_at);
