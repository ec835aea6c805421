-- Release funnel per pipeline phase, in phase order, over the pipeline's current releases:
--   active_now = releases whose active phase is this one
--   reached    = releases in this phase, in a later one, or completed (a completed release
--                went through every phase)
--   completed  = the pipeline's completed releases (the same on every phase row)
--   reached_share = reached ÷ the pipeline's releases (NULL when it has none)
CREATE OR REPLACE VIEW release_funnel AS
WITH phases AS (
    SELECT ph.project_key, ph.pipeline_key, p.name AS pipeline_name, ph.phase_id,
        ph.phase_index, ph.name AS phase_name
    FROM release_pipeline_phases ph
    JOIN release_pipelines p USING (project_key, pipeline_key)
    WHERE p._deleted_at IS NULL
),
releases AS (
    SELECT r.project_key, r.pipeline_key, r.flag_key, r.status, ph.phase_index
    FROM release_progressions r
    LEFT JOIN phases ph
        ON ph.project_key = r.project_key
        AND ph.pipeline_key = r.pipeline_key
        AND ph.phase_id = r.active_phase_id
    WHERE r._deleted_at IS NULL
),
totals AS (
    SELECT project_key, pipeline_key,
        count(*) AS releases,
        count(*) FILTER (WHERE status = 'completed') AS completed
    FROM releases
    GROUP BY ALL
)
SELECT
    ph.project_key,
    ph.pipeline_key,
    ph.pipeline_name,
    ph.phase_index,
    ph.phase_id,
    ph.phase_name,
    coalesce(t.releases, 0) AS releases,
    count(r.flag_key) FILTER (WHERE r.status = 'active' AND r.phase_index = ph.phase_index)
        AS active_now,
    count(r.flag_key) FILTER (
        WHERE r.status = 'completed' OR (r.status = 'active' AND r.phase_index >= ph.phase_index)
    ) AS reached,
    coalesce(t.completed, 0) AS completed,
    count(r.flag_key) FILTER (
        WHERE r.status = 'completed' OR (r.status = 'active' AND r.phase_index >= ph.phase_index)
    ) / max(t.releases) AS reached_share
FROM phases ph
LEFT JOIN totals t USING (project_key, pipeline_key)
LEFT JOIN releases r USING (project_key, pipeline_key)
GROUP BY ALL;
