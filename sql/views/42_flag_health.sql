-- LaunchDarkly's flag health (Insights): a flag is stale in an environment when it is temporary,
-- not archived (nor deleted), created at least 30 days before the data's end, and has had the
-- status `inactive` or `launched` for at least 7 days. The data's end is the last run that read
-- the statuses (max flag_status_history.observed_at). Since when a status holds is the earliest
-- of: the first run of its current streak in flag_status_history, and the moment the data
-- implies (`inactive` begins 7 days after the last evaluation, `launched` 7 days after the
-- flag's last change in that environment: its last flag event, else its creation). One row per
-- flag and environment with a status, with the reason, the maintainer and the last evaluation.
CREATE OR REPLACE VIEW flag_health AS
WITH data_end AS (
    SELECT max(observed_at) AS data_end FROM flag_status_history
),
history AS (
    SELECT h.project_key, h.environment_key, h.flag_key, h.observed_at,
        h.status <> s.status AS other
    FROM flag_status_history h
    JOIN flag_statuses s USING (project_key, environment_key, flag_key)
),
streaks AS (
    SELECT project_key, environment_key, flag_key,
        min(observed_at) FILTER (WHERE NOT other AND observed_at > last_other) AS observed_since
    FROM (
        SELECT *, coalesce(max(observed_at) FILTER (WHERE other)
            OVER (PARTITION BY project_key, environment_key, flag_key),
            '-infinity'::TIMESTAMPTZ) AS last_other
        FROM history
    )
    GROUP BY ALL
),
changes AS (
    SELECT project_key, environment_key, flag_key, max(event_time) AS last_change_at
    FROM flag_events
    GROUP BY ALL
),
statuses AS (
    SELECT
        s.project_key, s.environment_key, s.flag_key, s.status, s.last_requested,
        f.name, f.temporary, f.archived, f.creation_date,
        f.maintainer_id, f.maintainer_team_key, f.maintainer_team_name,
        c.last_change_at,
        least(
            st.observed_since,
            CASE s.status
                WHEN 'inactive' THEN coalesce(s.last_requested, f.creation_date) + INTERVAL 7 DAY
                WHEN 'launched' THEN coalesce(c.last_change_at, f.creation_date) + INTERVAL 7 DAY
            END
        ) AS status_since,
        d.data_end
    FROM flag_statuses s
    JOIN flags f USING (project_key, flag_key)
    CROSS JOIN data_end d
    LEFT JOIN streaks st USING (project_key, environment_key, flag_key)
    LEFT JOIN changes c USING (project_key, environment_key, flag_key)
    WHERE s._deleted_at IS NULL AND f._deleted_at IS NULL
),
judged AS (
    SELECT *,
        date_diff('second', creation_date, data_end) / 86400.0 AS age_days,
        date_diff('second', status_since, data_end) / 86400.0 AS status_days
    FROM statuses
)
SELECT
    project_key,
    environment_key,
    flag_key,
    name,
    status,
    status_since,
    temporary,
    archived,
    creation_date,
    maintainer_id,
    maintainer_team_key,
    maintainer_team_name,
    last_requested AS last_evaluated_at,
    last_change_at,
    data_end,
    temporary AND NOT archived AND creation_date <= data_end - INTERVAL 30 DAY
        AND status IN ('inactive', 'launched') AND status_since <= data_end - INTERVAL 7 DAY
        AS stale,
    CASE
        WHEN NOT temporary THEN 'permanent flag'
        WHEN archived THEN 'archived'
        WHEN creation_date > data_end - INTERVAL 30 DAY
            THEN printf('created %d days ago (stale from 30)', CAST(floor(age_days) AS INTEGER))
        WHEN status NOT IN ('inactive', 'launched') THEN status
        WHEN status_since > data_end - INTERVAL 7 DAY
            THEN printf('%s for %d days (stale from 7)', status, CAST(floor(status_days) AS INTEGER))
        ELSE printf('stale: %s for %d days', status, CAST(floor(status_days) AS INTEGER))
    END AS reason
FROM judged;
