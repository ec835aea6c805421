"""Team, Insights-group and LaunchDarkly-comparison views on hand-built warehouses.

Every expected number is worked out by hand from the rows inserted and written as a literal.
The owner that counts is the application's current maintainer (docs/metrics.md).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from hand_built import T0, H, deploy, one, rows

DAY = timedelta(days=1)


def application(
    warehouse: duckdb.DuckDBPyConnection,
    key: str,
    *,
    team: str | None = None,
    member: str | None = None,
) -> None:
    """An application row as the sync writes it (replacing an earlier one: the upsert)."""
    warehouse.execute("DELETE FROM applications WHERE application_key = ?", [key])
    warehouse.execute(
        "INSERT INTO applications (application_key, name, kind, auto_added,"
        " maintainer_member_id, maintainer_team_key, _raw, _run_id, _loaded_at)"
        " VALUES (?, ?, 'server', false, ?, ?, '{}', 'r', now())",
        [key, key, member, team],
    )


def group(warehouse: duckdb.DuckDBPyConnection, key: str, apps: list[str]) -> None:
    warehouse.execute(
        "INSERT INTO insight_groups (group_key, project_key, environment_key, name, created_at,"
        " application_keys, _raw, _run_id, _loaded_at)"
        " VALUES (?, 'p', 'production', ?, now(), ?, '{}', 'r', now())",
        [key, key, apps],
    )


def by_team(warehouse: duckdb.DuckDBPyConnection) -> dict[str, dict]:
    found = rows(warehouse, "SELECT * FROM dora_summary_by_team")
    return {row["team_key"]: row for row in found if row["environment_key"] == "production"}


def test_a_team_pools_the_deployments_of_its_two_applications(warehouse):
    application(warehouse, "a", team="payments")
    application(warehouse, "b", team="payments")
    for n, hours in enumerate((1, 2, 3)):
        deploy(warehouse, f"a{n}", T0 + n * H, application="a", lead_hours=hours)
    for n, hours in enumerate((10, 20)):
        deploy(warehouse, f"b{n}", T0 + n * H, application="b", lead_hours=hours)
    deploy(warehouse, "a-staging", T0, application="a", environment="staging", lead_hours=99)
    team = by_team(warehouse)["payments"]
    assert (team["deployments"], team["lead_time_n"]) == (5, 5)
    assert team["lead_time_p50_h"] == pytest.approx(3.0)  # the applications' medians: 2 and 15
    assert team["lead_time_mean_h"] == pytest.approx(7.2)  # (1 + 2 + 3 + 10 + 20) ÷ 5
    assert team["dora_lead_time_tier"] == "elite"
    staging = one(warehouse, "SELECT * FROM dora_summary_by_team WHERE environment_key = 'staging'")
    assert (staging["team_key"], staging["deployments"]) == ("payments", 1)


def test_an_application_that_moved_counts_whole_for_its_current_team(warehouse):
    application(warehouse, "mover", team="web")
    application(warehouse, "stays", team="web")
    for n in range(3):
        deploy(warehouse, f"before{n}", T0 + n * H, application="mover")
    deploy(warehouse, "stay", T0, application="stays")
    application(warehouse, "mover", team="mobile")  # the next sync finds the new maintainer
    deploy(warehouse, "after", T0 + 5 * H, application="mover")
    teams = by_team(warehouse)
    assert teams["mobile"]["deployments"] == 4  # its three earlier deployments moved with it
    assert teams["web"]["deployments"] == 1


def test_applications_without_a_team_are_grouped_as_no_team(warehouse):
    application(warehouse, "owned", team="sre")
    application(warehouse, "by-a-member", member="569f183514f4432160000007")
    application(warehouse, "nobodys")
    deploy(warehouse, "o", T0, application="owned")
    deploy(warehouse, "m1", T0, application="by-a-member")
    deploy(warehouse, "m2", T0 + H, application="by-a-member", kind="rollback")
    deploy(warehouse, "n", T0, application="nobodys")
    deploy(warehouse, "u", T0, application="never-synced")
    teams = by_team(warehouse)
    assert set(teams) == {"sre", "(no team)"}
    assert (teams["(no team)"]["deployments"], teams["(no team)"]["rollbacks"]) == (4, 1)
    assert teams["(no team)"]["launchdarkly_failure_rate"] == pytest.approx(0.25)
    assert teams["sre"]["deployments"] == 1


def test_an_insights_group_pools_its_applications_in_its_environment(warehouse):
    group(warehouse, "core", ["a", "b"])
    for n, hours in enumerate((1, 2, 3)):
        deploy(warehouse, f"a{n}", T0 + n * H, application="a", lead_hours=hours)
    for n, hours in enumerate((10, 20)):
        deploy(warehouse, f"b{n}", T0 + n * H, application="b", lead_hours=hours)
    deploy(warehouse, "c", T0, application="c", lead_hours=50)  # not in the group
    deploy(warehouse, "a-staging", T0, application="a", environment="staging")
    row = one(warehouse, "SELECT * FROM dora_summary_by_group")
    assert (row["group_key"], row["deployments"]) == ("core", 5)
    assert row["lead_time_p50_h"] == pytest.approx(3.0)


PERIOD_START = datetime(2026, 3, 2, tzinfo=UTC)  # T0's day: the period is T0's week


def score(warehouse, metric: str, indicator: str, value: int, *, group_key: str | None = None):
    warehouse.execute(
        "INSERT INTO insight_scores (run_id, project_key, environment_key, group_key, metric,"
        " period_start, period_end, score, indicator, indicator_min, indicator_max,"
        " _loaded_at) VALUES ('run-2', 'p', 'production', ?, ?, ?, ?, ?, ?, 0, 100, now())",
        [group_key, metric, PERIOD_START, PERIOD_START + 7 * DAY, value, indicator],
    )


def test_launchdarkly_and_our_tiers_side_by_side_over_its_period(warehouse):
    # One deployment a day for the period's seven days, 2 h lead time each, no rollback;
    # one more the day after the period (outside it).
    for n in range(7):
        deploy(warehouse, f"d{n}", T0 + n * DAY, lead_hours=2)
    deploy(warehouse, "later", T0 + 7 * DAY, lead_hours=500, kind="rollback")
    score(warehouse, "deploymentFrequency", "good", 80)
    score(warehouse, "deploymentFailureRate", "excellent", 95)
    score(warehouse, "leadTime", "notCalculated", 0)
    score(warehouse, "overall", "good", 75)  # not one of the compared three
    found = {
        r["metric"]: r
        for r in rows(warehouse, "SELECT * FROM insight_scores_vs_ours WHERE group_key IS NULL")
    }
    assert set(found) == {"deploymentFrequency", "deploymentFailureRate", "leadTime"}
    frequency = found["deploymentFrequency"]
    assert frequency["our_value"] == pytest.approx(1.0)  # 7 deployments ÷ 7 days
    assert (frequency["launchdarkly_tier"], frequency["our_tier"]) == ("Good", "Excellent")
    assert frequency["agrees"] is False
    failures = found["deploymentFailureRate"]
    assert (failures["our_value"], failures["our_tier"], failures["agrees"]) == (
        0.0,
        "Excellent",
        True,
    )
    lead = found["leadTime"]
    assert lead["our_value"] == pytest.approx(2.0)
    assert (lead["launchdarkly_tier"], lead["our_tier"], lead["agrees"]) == (
        None,
        "Excellent",
        False,
    )


def test_a_group_score_is_compared_with_the_groups_applications_only(warehouse):
    group(warehouse, "core", ["a"])
    for n in range(7):
        deploy(warehouse, f"a{n}", T0 + n * DAY, application="a")
    deploy(warehouse, "b0", T0, application="b", kind="rollback")
    score(warehouse, "deploymentFailureRate", "excellent", 100, group_key="core")
    score(warehouse, "deploymentFailureRate", "fair", 50)
    found = {r["group_key"]: r for r in rows(warehouse, "SELECT * FROM insight_scores_vs_ours")}
    assert (found["core"]["our_value"], found["core"]["agrees"]) == (0.0, True)
    assert found[None]["our_value"] == pytest.approx(1 / 8)  # 1 rollback of 8 deployments
    assert (found[None]["our_tier"], found[None]["agrees"]) == ("Fair", True)


def pull_request(warehouse, pr_id: str, status: str, created, merged=None) -> None:
    warehouse.execute(
        "INSERT INTO pull_requests (pull_request_id, external_id, title, status, author,"
        " created_at, merged_at, base_commit_key, head_commit_key, files_changed, lines_added,"
        " lines_deleted, url, _raw, _run_id, _loaded_at, project_key)"
        " VALUES (?, ?, 't', ?, 'a', ?, ?, 'b', 'h', 1, 1, 1, 'u', '{}', 'r', now(), 'p')",
        [pr_id, pr_id, status, created, merged],
    )


def test_cycle_time_lists_open_pull_requests_with_their_age_and_closed_unmerged_ones(warehouse):
    deploy(warehouse, "d", T0)  # ends T0 + 10 min
    pull_request(warehouse, "shipped", "deployed", T0 - 30 * H, merged=T0 - 6 * H)
    warehouse.execute("INSERT INTO deployment_pull_requests VALUES ('d', 'shipped', 'r')")
    pull_request(warehouse, "open", "open", T0 - 10 * H)
    pull_request(warehouse, "closed", "closed", T0 - 5 * H)
    found = {
        r["pull_request_id"]: r for r in rows(warehouse, "SELECT * FROM pull_request_cycle_time")
    }
    assert sorted(found) == ["closed", "open", "shipped"]
    assert found["shipped"]["environment_key"] == "production"
    assert found["shipped"]["cycle_h"] == pytest.approx(30 + 1 / 6)
    assert (found["shipped"]["open_age_h"], found["shipped"]["closed_unmerged"]) == (None, False)
    # The data's end is T0 (the newest deployment start): the open one is 10 h old.
    assert found["open"]["open_age_h"] == pytest.approx(10.0)
    assert (found["open"]["environment_key"], found["open"]["cycle_h"]) == (None, None)
    assert (found["closed"]["closed_unmerged"], found["closed"]["open_age_h"]) == (True, None)
