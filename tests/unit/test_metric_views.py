"""Edge cases of the metric views on tiny hand-built warehouses.

The sandbox tests (tests/integration/test_metrics.py) check the views against the truth on
realistic data; these pin what that data rarely shows: no data is NULL (never a perfect 0),
tier boundaries, archived and deleted rows left out.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hand_built import T0
from hand_built import deploy as _deploy
from hand_built import one as _one


def test_an_empty_warehouse_has_no_rows_rather_than_zeros(warehouse):
    views = ("dora_weekly", "dora_summary", "failed_deployment_recovery", "release_funnel",
             "flag_reference_churn", "release_phase_durations", "stalled_releases")  # fmt: skip
    for view in views:
        assert warehouse.execute(f"SELECT count(*) FROM {view}").fetchone() == (0,), view


def test_only_failed_deployments_leave_lead_time_and_its_tiers_null(warehouse):
    _deploy(warehouse, "a", T0, status="failed")
    row = _one(warehouse, "SELECT * FROM dora_summary")
    assert (row["deployments"], row["failed"], row["lead_time_n"]) == (1, 1, 0)
    assert row["lead_time_mean_h"] is None and row["lead_time_p50_h"] is None
    assert row["dora_lead_time_tier"] is None and row["launchdarkly_lead_time_tier"] is None
    assert row["unrecovered"] == 1
    # Not recovered: it enters at its age at the data's end, which is its own start, 0 h. A
    # lower bound, flagged: the tier says how good it can be at best.
    assert row["recovery_p50_h"] == 0.0 and row["recovery_lower_bound"] is True
    assert row["dora_recovery_tier"] == "elite"
    assert row["dora_deployment_frequency_tier"] == "low"  # data: zero successful deployments


def test_a_week_without_deployments_is_zero_with_null_rates(warehouse):
    _deploy(warehouse, "a", T0)
    _deploy(warehouse, "b", T0 + timedelta(days=14))
    rows = warehouse.execute(
        "SELECT week_start, deployments, change_failure_rate, lead_time_p50_h FROM dora_weekly"
        " ORDER BY 1"
    ).fetchall()
    assert rows == [
        (date(2026, 3, 2), 1, 0.0, 2.0),
        (date(2026, 3, 9), 0, None, None),
        (date(2026, 3, 16), 1, 0.0, 2.0),
    ]


def test_archived_deployments_and_deleted_environments_are_left_out(warehouse):
    _deploy(warehouse, "a", T0)
    _deploy(warehouse, "b", T0, archived=True)
    _deploy(warehouse, "c", T0, environment="gone")
    warehouse.execute(
        "INSERT INTO environments (project_key, environment_key, environment_id, name, _raw,"
        " _run_id, _loaded_at, _deleted_at) VALUES ('p', 'gone', 'x', 'Gone', '{}', 'r', now(),"
        " now())"
    )
    assert warehouse.execute("SELECT list(deployment_id) FROM metric_deployments").fetchone() == (
        ["a"],
    )


def test_lead_time_percentiles_interpolate(warehouse):
    for n, hours in enumerate((1, 2, 3, 10)):
        _deploy(warehouse, f"d{n}", T0 + timedelta(hours=n), lead_hours=hours)
    _deploy(warehouse, "rollback", T0 + timedelta(hours=5), kind="rollback", lead_hours=500)
    row = _one(warehouse, "SELECT * FROM dora_weekly")
    assert row["lead_time_n"] == 4  # the rollback's lead time is not a change's
    assert row["lead_time_p50_h"] == pytest.approx(2.5)  # not 2 or 3 (a rank)
    assert row["lead_time_p90_h"] == pytest.approx(3 + 0.7 * 7)
    assert row["lead_time_mean_h"] == pytest.approx(4.0)
    assert row["launchdarkly_failure_rate"] == pytest.approx(1 / 5)


def test_recovery_runs_to_the_end_of_the_next_success_in_the_same_place(warehouse):
    _deploy(warehouse, "failed", T0, status="failed")
    _deploy(warehouse, "elsewhere", T0 + timedelta(minutes=5), environment="staging")
    _deploy(warehouse, "fixed", T0 + timedelta(minutes=50))
    _deploy(warehouse, "later", T0 + timedelta(hours=3))
    row = _one(warehouse, "SELECT * FROM failed_deployment_recovery")
    assert row["recovered_by_deployment_id"] == "fixed"
    assert row["recovery_h"] == pytest.approx(1.0)  # start of the failure → end of the fix


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("launchdarkly_lead_time_tier(23.99)", "Excellent"),
        ("launchdarkly_lead_time_tier(24)", "Good"),
        ("launchdarkly_lead_time_tier(168)", "Good"),
        ("launchdarkly_lead_time_tier(672)", "Fair"),
        ("launchdarkly_lead_time_tier(672.01)", "Needs attention"),
        ("dora_lead_time_tier(24)", "high"),
        ("dora_lead_time_tier(719)", "medium"),
        ("dora_lead_time_tier(720)", "low"),
        ("dora_change_failure_tier(0.05)", "elite"),
        ("dora_change_failure_tier(0.1)", "high"),
        ("dora_change_failure_tier(0.15)", "medium"),
        ("dora_change_failure_tier(0.151)", "low"),
        ("dora_recovery_tier(0.99)", "elite"),
        ("dora_recovery_tier(1)", "high"),
        ("dora_recovery_tier(168)", "low"),
        ("dora_deployment_frequency_tier(5, 30)", "elite"),
        ("dora_deployment_frequency_tier(1, 4)", "high"),
        ("dora_deployment_frequency_tier(0, 1)", "medium"),
        ("dora_deployment_frequency_tier(0, 0.9)", "low"),
        ("dora_recovery_tier(NULL)", None),
        ("launchdarkly_lead_time_tier(NULL)", None),
    ],
)
def test_tier_boundaries(warehouse, sql, expected):
    assert warehouse.execute(f"SELECT {sql}").fetchone() == (expected,)
