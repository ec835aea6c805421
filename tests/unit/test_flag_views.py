"""Flag views on tiny hand-built warehouses: the stale rule's boundaries, release frequency and
experimentation coverage. Every expected value is written by hand (docs/metrics.md)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hand_built import deploy, environment, flag_reference, rows

END = datetime(2026, 3, 30, 12, 0, tzinfo=UTC)  # the data's end: the last statuses run
MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _flag(wh, key: str, *, age_days: float, temporary: bool = True, archived: bool = False,
          team: str | None = "web") -> None:  # fmt: skip
    wh.execute(
        "INSERT INTO flags (project_key, flag_key, name, kind, temporary, archived, deprecated,"
        " creation_date, maintainer_id, maintainer_team_key, maintainer_team_name, tags, version,"
        " _raw, _run_id, _loaded_at) VALUES ('p', ?, ?, 'boolean', ?, ?, false, ?, 'm1', ?, ?,"
        " [], 1, '{}', 'r', now())",
        [key, key, temporary, archived, END - timedelta(days=age_days), team, team],
    )


def _status(wh, key: str, status: str, *, last_requested: datetime | None = None,
            seen: tuple[tuple[datetime, str], ...] = (),
            environment: str = "production") -> None:  # fmt: skip
    wh.execute(
        "INSERT INTO flag_statuses (project_key, environment_key, flag_key, status,"
        " last_requested, _raw, _run_id, _loaded_at) VALUES ('p', ?, ?, ?, ?, '{}', 'r', now())",
        [environment, key, status, last_requested],
    )
    for observed, was in (*seen, (END, status)):
        wh.execute(
            "INSERT INTO flag_status_history VALUES (?, ?, 'p', ?, ?, ?, ?)",
            [f"run-{observed:%d%H}", observed, environment, key, was, last_requested],
        )


def _event(wh, event_id: str, key: str, at: datetime, size: str | None = "large",
           experiment: bool = False) -> None:  # fmt: skip
    wh.execute(
        "INSERT INTO flag_events (event_id, project_key, environment_key, flag_key, event_type,"
        " event_time, description, impact_size, project_id, _raw, _run_id, _loaded_at)"
        " VALUES (?, 'p', 'production', ?, 'flag-updated', ?, 'd', ?, 'pid', '{}', 'r', now())",
        [event_id, key, at, size],
    )
    if experiment:
        wh.execute(
            "INSERT INTO flag_event_experiments (event_id, experiment_key, _run_id)"
            " VALUES (?, 'exp', 'r')",
            [event_id],
        )


def _health(wh, key: str) -> tuple[bool, str]:
    row = wh.execute("SELECT stale, reason FROM flag_health WHERE flag_key = ?", [key]).fetchone()
    assert row is not None, key
    return row


def test_a_flag_29_days_old_is_not_stale_and_30_days_old_is(warehouse):
    for key, age in (("young", 29), ("old", 30)):
        _flag(warehouse, key, age_days=age)
        _status(warehouse, key, "launched")
        _event(warehouse, f"e-{key}", key, END - timedelta(days=20))  # launched since END-13d
    assert _health(warehouse, "young") == (False, "created 29 days ago (stale from 30)")
    assert _health(warehouse, "old") == (True, "stale: launched for 13 days")


def test_launched_for_6_days_is_not_stale_and_for_7_days_is(warehouse):
    for key, change_days in (("six", 13), ("seven", 14)):
        _flag(warehouse, key, age_days=60)
        _status(warehouse, key, "launched")
        _event(warehouse, f"e-{key}", key, END - timedelta(days=change_days))
    assert _health(warehouse, "six") == (False, "launched for 6 days (stale from 7)")
    assert _health(warehouse, "seven") == (True, "stale: launched for 7 days")


def test_inactive_counts_from_7_days_after_the_last_evaluation(warehouse):
    for key, last_days in (("six", 13), ("seven", 14)):
        _flag(warehouse, key, age_days=60)
        _status(warehouse, key, "inactive", last_requested=END - timedelta(days=last_days))
    assert _health(warehouse, "six") == (False, "inactive for 6 days (stale from 7)")
    assert _health(warehouse, "seven") == (True, "stale: inactive for 7 days")


def test_a_permanent_flag_and_an_archived_flag_are_never_stale(warehouse):
    _flag(warehouse, "kill-switch", age_days=200, temporary=False)
    _flag(warehouse, "gone", age_days=200, archived=True)
    for key in ("kill-switch", "gone"):
        _status(warehouse, key, "inactive", last_requested=END - timedelta(days=100))
    assert _health(warehouse, "kill-switch") == (False, "permanent flag")
    assert _health(warehouse, "gone") == (False, "archived")


def test_an_active_or_new_flag_is_healthy_whatever_its_age(warehouse):
    _flag(warehouse, "busy", age_days=200)
    _status(warehouse, "busy", "active", last_requested=END)
    assert _health(warehouse, "busy") == (False, "active")


def test_the_status_history_can_date_a_launch_earlier_than_the_last_change_implies(warehouse):
    # Last change 10 days ago implies launched for 3 days; the runs saw it launched 8 days ago.
    _flag(warehouse, "seen", age_days=90)
    days = [END - timedelta(days=n) for n in range(9)]
    _status(warehouse, "seen", "launched", seen=((days[8], "launched"), (days[1], "launched")))
    _event(warehouse, "e-seen", "seen", END - timedelta(days=10))
    # Seen active 5 days ago: its launched streak starts after that, 1 day ago.
    _flag(warehouse, "broken", age_days=90)
    history = ((days[8], "launched"), (days[5], "active"), (days[1], "launched"))
    _status(warehouse, "broken", "launched", seen=history)
    _event(warehouse, "e-broken", "broken", END - timedelta(days=10))
    assert _health(warehouse, "seen") == (True, "stale: launched for 8 days")
    assert _health(warehouse, "broken") == (False, "launched for 3 days (stale from 7)")


def test_release_frequency_counts_impactful_changes_by_size_with_empty_weeks(warehouse):
    _flag(warehouse, "f", age_days=60)
    for n, size in enumerate(("small", "small", "large", "none", None)):
        _event(warehouse, f"a{n}", "f", MONDAY + timedelta(hours=n), size)
    _event(warehouse, "b", "f", MONDAY + timedelta(days=15), "medium")
    rows = warehouse.execute(
        "SELECT week_start, releases, small, medium, large, flag_events, releases_per_day"
        " FROM release_frequency_weekly ORDER BY week_start"
    ).fetchall()
    assert rows == [
        (date(2026, 3, 2), 3, 2, 0, 1, 5, pytest.approx(3 / 7)),
        (date(2026, 3, 9), 0, 0, 0, 0, 0, 0.0),
        (date(2026, 3, 16), 1, 0, 1, 0, 1, pytest.approx(1 / 7)),
    ]


def test_experimentation_coverage_is_the_share_of_impactful_changes_with_an_experiment(warehouse):
    _flag(warehouse, "f", age_days=60)
    _event(warehouse, "a1", "f", MONDAY, "small", experiment=True)
    _event(warehouse, "a2", "f", MONDAY + timedelta(hours=1), "large")
    _event(warehouse, "a3", "f", MONDAY + timedelta(hours=2), "medium")
    _event(warehouse, "a4", "f", MONDAY + timedelta(hours=3), "none", experiment=True)
    _event(warehouse, "b", "f", MONDAY + timedelta(days=14), "large")
    rows = warehouse.execute(
        "SELECT week_start, releases, with_experiment, coverage"
        " FROM experimentation_coverage_weekly ORDER BY week_start"
    ).fetchall()
    assert rows == [
        (date(2026, 3, 2), 3, 1, pytest.approx(1 / 3)),
        (date(2026, 3, 9), 0, 0, None),
        (date(2026, 3, 16), 1, 0, 0.0),
    ]


def test_no_flag_data_is_no_rows(warehouse):
    for view in ("release_frequency_weekly", "experimentation_coverage_weekly", "flag_health"):
        assert warehouse.execute(f"SELECT count(*) FROM {view}").fetchone() == (0,), view


def test_a_stale_flag_whose_references_are_gone_is_first_in_line_for_cleanup(warehouse):
    environment(warehouse, "production", critical=True)
    environment(warehouse, "staging", critical=False)
    for n, key in enumerate(("stale-gone", "busy-gone")):
        deploy(warehouse, f"add-{key}", MONDAY + timedelta(hours=n), version=f"a{n}")
        flag_reference(warehouse, f"add-{key}", key, 2, 0)
        deploy(warehouse, f"remove-{key}", MONDAY + timedelta(days=1, hours=n), version=f"r{n}")
        flag_reference(warehouse, f"remove-{key}", key, 0, 2)
        _flag(warehouse, key, age_days=90)
    _status(warehouse, "stale-gone", "launched")  # production: launched for 7 days
    _event(warehouse, "e-stale", "stale-gone", END - timedelta(days=14))
    _status(warehouse, "stale-gone", "active", environment="staging")  # not critical
    _status(warehouse, "busy-gone", "active", last_requested=END)
    found = rows(
        warehouse,
        "SELECT flag_key, stale, stale_environments FROM flag_cleanup_candidates"
        " ORDER BY stale DESC NULLS LAST, flag_key",
    )
    assert found == [
        {"flag_key": "stale-gone", "stale": True, "stale_environments": ["production"]},
        {"flag_key": "busy-gone", "stale": False, "stale_environments": None},
    ]
