-- How far along is every release: active releases per pipeline phase, in phase order.
CREATE OR REPLACE VIEW release_pipeline_progress AS
SELECT
    ph.project_key,
    ph.pipeline_key,
    ph.phase_index,
    ph.phase_id,
    ph.name AS phase_name,
    count(pr.flag_key) AS active_releases
FROM release_pipeline_phases ph
JOIN release_pipelines p USING (project_key, pipeline_key)
LEFT JOIN release_progressions pr
    ON pr.project_key = ph.project_key
    AND pr.pipeline_key = ph.pipeline_key
    AND pr.active_phase_id = ph.phase_id
    AND pr.status = 'active'
    AND pr._deleted_at IS NULL
WHERE p._deleted_at IS NULL
GROUP BY ALL;
