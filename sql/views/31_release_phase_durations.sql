-- Time each release spent in each phase, from the per-run snapshots
-- (release_progression_snapshots). Every time is a sighting: the release changed phase at
-- some moment between the previous run and the run that saw it, so entered_at and left_at
-- are late by up to one sync interval (release_phase_duration_stats.sync_interval_h).
--   entered_at = the release's created_at in the first phase (a release starts there), else
--                the first sighting in the phase
--   entry_observed = the entry is known: the first phase, or a later one the release was
--                seen entering (it was seen before, in an earlier phase). A release first seen
--                in a later phase entered it at some unknown time before: its stay is a lower
--                bound, kept visible here and left out of the stats and stalls
--   first_sighting = the stay began with the release's first sighting at all
--   left_at    = first later sighting in a later phase or completed (NULL: still there)
--   duration_h = left_at - entered_at, hours (NULL while in the phase)
--   last_seen_in_phase_at, in_phase_so_far_h = up to the latest sync, for current phases
CREATE OR REPLACE VIEW release_phase_durations AS
WITH phases AS (
    SELECT ph.project_key, ph.pipeline_key, ph.phase_id, ph.phase_index, ph.name AS phase_name
    FROM release_pipeline_phases ph
    JOIN release_pipelines p USING (project_key, pipeline_key)
    WHERE p._deleted_at IS NULL
),
sightings AS (
    SELECT s.project_key, s.pipeline_key, s.flag_key, s.created_at, s.observed_at, s.status,
        s.active_phase_id, ph.phase_index
    FROM release_progression_snapshots s
    JOIN release_progressions r USING (project_key, pipeline_key, flag_key, created_at)
    LEFT JOIN phases ph
        ON ph.project_key = s.project_key
        AND ph.pipeline_key = s.pipeline_key
        AND ph.phase_id = s.active_phase_id
    WHERE r._deleted_at IS NULL
),
first_seen AS (
    SELECT project_key, pipeline_key, flag_key, created_at, min(observed_at) AS first_seen_at
    FROM sightings
    GROUP BY ALL
),
first_phase AS (
    SELECT project_key, pipeline_key, min(phase_index) AS first_index
    FROM phases
    GROUP BY ALL
),
stays AS (
    SELECT project_key, pipeline_key, flag_key, created_at, active_phase_id AS phase_id,
        any_value(phase_index) AS phase_index,
        min(observed_at) AS first_seen_in_phase_at,
        max(observed_at) AS last_seen_in_phase_at
    FROM sightings
    WHERE status = 'active' AND phase_index IS NOT NULL
    GROUP BY ALL
),
latest AS (
    SELECT max(observed_at) AS latest_sync_at FROM release_progression_snapshots
)
SELECT
    st.project_key,
    st.pipeline_key,
    st.flag_key,
    st.created_at,
    st.phase_id,
    st.phase_index,
    ph.phase_name,
    e.entered_at,
    e.entry_observed,
    st.first_seen_in_phase_at = fs.first_seen_at AS first_sighting,
    lv.left_at,
    hours_between(e.entered_at, lv.left_at) AS duration_h,
    st.last_seen_in_phase_at,
    CASE WHEN lv.left_at IS NULL
        THEN hours_between(e.entered_at, l.latest_sync_at) END AS in_phase_so_far_h
FROM stays st
JOIN phases ph USING (project_key, pipeline_key, phase_id)
JOIN first_phase fp USING (project_key, pipeline_key)
JOIN first_seen fs USING (project_key, pipeline_key, flag_key, created_at)
CROSS JOIN latest l
CROSS JOIN LATERAL (
    SELECT
        CASE WHEN st.phase_index = fp.first_index THEN st.created_at
            ELSE st.first_seen_in_phase_at END AS entered_at,
        st.phase_index = fp.first_index OR st.first_seen_in_phase_at > fs.first_seen_at
            AS entry_observed
) e
LEFT JOIN LATERAL (
    SELECT min(s.observed_at) AS left_at
    FROM sightings s
    WHERE s.project_key = st.project_key
        AND s.pipeline_key = st.pipeline_key
        AND s.flag_key = st.flag_key
        AND s.created_at = st.created_at
        AND s.observed_at > st.first_seen_in_phase_at
        AND (s.status = 'completed' OR s.phase_index > st.phase_index)
) lv ON true;

-- Per pipeline phase: how long releases stay, over the stays that ended (left_at known) and
-- whose entry was observed (stays_entry_unobserved counts the others, left out).
-- sync_interval_h is the median gap between consecutive syncs that took snapshots: the
-- resolution of every time above.
-- The percentiles interpolate whole microseconds, not duration_h: DuckDB's quantile_cont over
-- doubles is not exact when the two values it interpolates are equal (two stays of 683460 us
-- gave a p90 one bit under their duration_h, so stalled_releases flagged releases exactly as
-- long as the p90); over BIGINT equal values give exactly that value.
CREATE OR REPLACE VIEW release_phase_duration_stats AS
WITH gaps AS (
    SELECT hours_between(lag(observed_at) OVER (ORDER BY observed_at), observed_at)
        AS gap_h
    FROM (SELECT DISTINCT observed_at FROM release_progression_snapshots)
),
resolution AS (
    SELECT quantile_cont(gap_h, 0.5) AS sync_interval_h FROM gaps
)
SELECT
    ph.project_key,
    ph.pipeline_key,
    ph.phase_index,
    ph.phase_id,
    ph.name AS phase_name,
    count(d.duration_h) FILTER (WHERE d.entry_observed) AS stays_ended,
    count(d.phase_id) FILTER (WHERE d.entry_observed AND d.duration_h IS NULL) AS stays_current,
    count(d.phase_id) FILTER (WHERE NOT d.entry_observed) AS stays_entry_unobserved,
    quantile_cont(date_diff('microsecond', d.entered_at, d.left_at), 0.5)
        FILTER (WHERE d.entry_observed) / 3600000000.0 AS duration_p50_h,
    quantile_cont(date_diff('microsecond', d.entered_at, d.left_at), 0.9)
        FILTER (WHERE d.entry_observed) / 3600000000.0 AS duration_p90_h,
    any_value(r.sync_interval_h) AS sync_interval_h
FROM release_pipeline_phases ph
JOIN release_pipelines p USING (project_key, pipeline_key)
CROSS JOIN resolution r
LEFT JOIN release_phase_durations d USING (project_key, pipeline_key, phase_id)
WHERE p._deleted_at IS NULL
GROUP BY ALL;

-- Active releases in their current phase longer than a number of days, measured up to the
-- latest sync: SELECT * FROM stalled_releases_longer_than(14). Stays whose entry was observed.
CREATE OR REPLACE MACRO stalled_releases_longer_than(days) AS TABLE
SELECT d.*, CAST(days AS DOUBLE) * 24 AS threshold_h
FROM release_phase_durations d
JOIN release_progressions r USING (project_key, pipeline_key, flag_key, created_at)
WHERE r.status = 'active' AND r._deleted_at IS NULL AND r.active_phase_id = d.phase_id
    AND d.entry_observed AND d.left_at IS NULL
    AND d.in_phase_so_far_h > CAST(days AS DOUBLE) * 24;

-- Active releases in their current phase longer than that phase's p90 stay
-- (release_phase_duration_stats); phases without an ended stay have no p90 and flag nothing.
-- Stays whose entry was observed only, as for the p90.
CREATE OR REPLACE VIEW stalled_releases AS
SELECT d.*, s.duration_p90_h AS threshold_h
FROM release_phase_durations d
JOIN release_progressions r USING (project_key, pipeline_key, flag_key, created_at)
JOIN release_phase_duration_stats s USING (project_key, pipeline_key, phase_id)
WHERE r.status = 'active' AND r._deleted_at IS NULL AND r.active_phase_id = d.phase_id
    AND d.entry_observed AND d.left_at IS NULL AND d.in_phase_so_far_h > s.duration_p90_h;
