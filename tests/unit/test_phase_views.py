"""Release phase durations on hand-built snapshots: which stays' entries were observed.

A pipeline of three phases (index 0, 1, 2) and syncs an hour apart (S1, S2, S3). Every
expected number is worked out by hand from the sightings and written as a literal.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from hand_built import T0, H, rows

S1, S2, S3 = T0, T0 + H, T0 + 2 * H
PHASES = ("first", "second", "third")


@pytest.fixture
def pipeline(warehouse):
    warehouse.execute(
        "INSERT INTO release_pipelines (project_key, pipeline_key, name, created_at, phase_count,"
        " _raw, _run_id, _loaded_at) VALUES ('p', 'pl', 'Pipeline', ?, 3, '{}', 'r', now())",
        [T0 - 100 * H],
    )
    for index, phase in enumerate(PHASES):
        warehouse.execute(
            "INSERT INTO release_pipeline_phases (project_key, pipeline_key, phase_id,"
            " phase_index, name, _run_id) VALUES ('p', 'pl', ?, ?, ?, 'r')",
            [phase, index, phase.title()],
        )
    return warehouse


def _release(warehouse, flag: str, created: datetime, seen: dict[datetime, str]) -> None:
    """A release created at `created`, seen by each sync in the phase given."""
    for at, phase in seen.items():
        warehouse.execute(
            "INSERT INTO release_progression_snapshots (run_id, project_key, pipeline_key,"
            " flag_key, created_at, observed_at, status, active_phase_id) VALUES"
            " (?, 'p', 'pl', ?, ?, ?, 'active', ?)",
            [f"run-{at:%H}", flag, created, at, phase],
        )
    warehouse.execute(
        "INSERT INTO release_progressions (project_key, pipeline_key, flag_key, created_at,"
        " status, active_phase_id, _raw, _run_id, _loaded_at) VALUES"
        " ('p', 'pl', ?, ?, 'active', ?, '{}', 'r', now())",
        [flag, created, seen[max(seen)]],
    )


def _stays(warehouse) -> dict[tuple[str, str], dict]:
    return {
        (r["flag_key"], r["phase_id"]): r
        for r in rows(warehouse, "SELECT * FROM release_phase_durations")
    }


def test_case9_stays_first_seen_mid_phase_leave_the_p90_and_the_stalls(pipeline):
    # A new warehouse: every release is first seen in the second phase.
    _release(pipeline, "moved", T0 - 50 * H, {S1: "second", S2: "third", S3: "third"})
    _release(pipeline, "waiting", T0 - 50 * H, {S1: "second", S2: "second", S3: "second"})
    stats = {r["phase_id"]: r for r in rows(pipeline, "SELECT * FROM release_phase_duration_stats")}
    assert (stats["second"]["stays_ended"], stats["second"]["stays_entry_unobserved"]) == (0, 2)
    assert stats["second"]["duration_p90_h"] is None  # was 1.0 h: one sync interval
    assert rows(pipeline, "SELECT * FROM stalled_releases") == []  # "waiting" 2 h > 1 h was
    longer = rows(pipeline, "SELECT flag_key, phase_id FROM stalled_releases_longer_than(0.01)")
    assert longer == [{"flag_key": "moved", "phase_id": "third"}]  # seen entering at S2


def test_a_release_first_seen_mid_phase_is_kept_with_its_entry_unobserved(pipeline):
    _release(pipeline, "late", T0 - 50 * H, {S1: "second", S2: "third", S3: "third"})
    stays = _stays(pipeline)
    second = stays[("late", "second")]
    assert (second["entry_observed"], second["entered_at"], second["left_at"]) == (False, S1, S2)
    assert second["duration_h"] == pytest.approx(1.0)  # a lower bound
    third = stays[("late", "third")]
    assert (third["entry_observed"], third["entered_at"]) == (True, S2)
    assert third["in_phase_so_far_h"] == pytest.approx(1.0)


def test_the_first_phase_is_entered_at_the_release_creation(pipeline):
    _release(pipeline, "new", T0 - 5 * H, {S1: "first", S2: "second", S3: "second"})
    _release(pipeline, "slow", T0 - 3 * H, {S1: "first", S2: "first", S3: "first"})
    stays = _stays(pipeline)
    first = stays[("new", "first")]
    assert (first["entry_observed"], first["entered_at"]) == (True, T0 - 5 * H)
    assert first["duration_h"] == pytest.approx(6.0)  # created 04:00, seen gone at S2 10:00
    assert stays[("new", "second")]["entry_observed"] is True
    assert stays[("slow", "first")]["in_phase_so_far_h"] == pytest.approx(5.0)
    stats = {r["phase_id"]: r for r in rows(pipeline, "SELECT * FROM release_phase_duration_stats")}
    assert stats["first"]["duration_p90_h"] == pytest.approx(6.0)
    assert rows(pipeline, "SELECT * FROM stalled_releases") == []  # 5 h is under 6 h


def test_case10_the_views_newer_ones_replaced_are_gone(warehouse):
    names = {"release_time_in_phase", "release_pipeline_progress"}
    (found,) = warehouse.execute(
        "SELECT count(*) FROM duckdb_views() WHERE view_name IN ?", [list(names)]
    ).fetchone()
    assert found == 0
