"""The metric definitions of docs/metrics.md, one audit case each, on hand-built warehouses.

Every expected number is worked out by hand from the rows inserted and written here as a
literal: a test that recomputed the definition in Python would share its mistakes. The case
numbers are issue 20's audit cases.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hand_built import T0, H, M, deploy, environment, flag_reference, one, rows

DAY = timedelta(days=1)


# --------------------------------------------------------------------------- lead time


def _changes_redeployments_and_prless(warehouse) -> None:
    """5 changes with PRs (50–90 h), 3 redeployments (2 h), 2 PR-less deployments (0.1 h)."""
    for n, (hours, prs) in enumerate(((50, 1), (60, 1), (70, 1), (80, 1), (90, 4))):
        deploy(warehouse, f"change{n}", T0 + n * H, lead_hours=hours, prs=prs)
    for n in range(3):
        deploy(warehouse, f"redeploy{n}", T0 + (10 + n) * H, kind="redeployment", lead_hours=2)
    for n in range(2):
        deploy(warehouse, f"prless{n}", T0 + (20 + n) * H, lead_hours=0.1, prs=0)


def test_case1_lead_time_counts_changes_with_pull_requests_only(warehouse):
    _changes_redeployments_and_prless(warehouse)
    row = one(warehouse, "SELECT * FROM dora_summary")
    assert row["deployments"] == 10
    assert row["lead_time_n"] == 5
    assert row["lead_time_p50_h"] == pytest.approx(70.0)  # over all ten it was 26.0 (elite)
    assert row["lead_time_mean_h"] == pytest.approx(70.0)
    assert row["dora_lead_time_tier"] == "high"


def test_lead_time_pr_weighted_mean_weighs_each_deployment_by_its_pull_requests(warehouse):
    _changes_redeployments_and_prless(warehouse)
    row = one(warehouse, "SELECT * FROM dora_summary")
    # (50 + 60 + 70 + 80 + 90 × 4) ÷ 8 pull requests
    assert row["lead_time_pr_weighted_mean_h"] == pytest.approx(77.5)
    assert row["lead_time_pull_requests"] == 8
    assert row["launchdarkly_lead_time_tier"] == "Good"


def test_case2_deployment_lead_times_lists_counted_lead_times_only(warehouse):
    _changes_redeployments_and_prless(warehouse)
    deploy(warehouse, "rollback", T0 + 30 * H, kind="rollback", lead_hours=500)
    listed = warehouse.execute(
        "SELECT list(deployment_id ORDER BY deployment_id) FROM deployment_lead_times"
    ).fetchone()
    assert listed == (["change0", "change1", "change2", "change3", "change4"],)


def test_a_kind_the_api_does_not_document_counts_as_a_change(warehouse):
    deploy(warehouse, "known", T0, lead_hours=4)
    deploy(warehouse, "hotfix", T0 + H, kind="hotfix", lead_hours=6)
    row = one(warehouse, "SELECT * FROM dora_summary")
    assert (row["change_deployments"], row["lead_time_n"]) == (2, 2)
    assert row["lead_time_mean_h"] == pytest.approx(5.0)


@pytest.mark.parametrize(("counted", "tier"), [(4, None), (5, "elite")])
def test_a_lead_time_tier_needs_five_lead_times(warehouse, counted, tier):
    for n in range(counted):
        deploy(warehouse, f"d{n}", T0 + n * H, lead_hours=3)
    row = one(warehouse, "SELECT * FROM dora_summary")
    assert row["lead_time_p50_h"] == pytest.approx(3.0)
    assert row["dora_lead_time_tier"] == tier
    assert row["launchdarkly_lead_time_tier"] == (tier and "Excellent")


def test_lead_time_stages_and_change_size_are_medians_per_change(warehouse):
    for n, (stages, lines) in enumerate(
        [((1, 2, 3, 0.5), (10, 0)), ((3, 4, 5, 0.25), (20, 10)), ((5, 6, 7, 1), (100, 50))]
    ):
        deploy(warehouse, f"d{n}", T0 + n * H, stages_h=stages, lines=lines)
    deploy(warehouse, "redeploy", T0 + 5 * H, kind="redeployment", stages_h=(90, 90, 90, 90),
           lines=(9000, 0))  # fmt: skip
    row = one(warehouse, "SELECT * FROM dora_weekly")
    assert (row["coding_p50_h"], row["review_p50_h"], row["wait_p50_h"], row["deploy_p50_h"]) == (
        pytest.approx(3.0), pytest.approx(4.0), pytest.approx(5.0), pytest.approx(0.5)
    )  # fmt: skip
    assert row["change_size_p50_lines"] == 30


# --------------------------------------------------------------------------- change failures


def test_case3_a_failed_change_counts_as_a_change_failure(warehouse):
    for n in range(9):
        deploy(warehouse, f"ok{n}", T0 + n * H)
    deploy(warehouse, "failed", T0 + 9 * H, status="failed")
    row = one(warehouse, "SELECT * FROM dora_summary")
    assert (row["change_deployments_ended"], row["change_failures"]) == (10, 1)
    assert row["change_failure_rate"] == pytest.approx(0.1)
    assert row["dora_change_failure_tier"] == "high"  # was elite: 0 rollbacks ÷ 10
    assert row["launchdarkly_failure_rate"] == 0.0


def test_a_rollback_marks_the_latest_success_before_it_as_rolled_back(warehouse):
    deploy(warehouse, "v1", T0, version="v1")
    deploy(warehouse, "v2", T0 + H, version="v2")
    deploy(warehouse, "v3-failed", T0 + 2 * H, version="v3", status="failed")
    deploy(warehouse, "back", T0 + 3 * H, kind="rollback", version="v1", prs=0)
    deploy(warehouse, "v4", T0 + 4 * H, version="v4")
    deploy(warehouse, "v5", T0 + 5 * H, version="v5")
    facts = {r["deployment_id"]: r for r in rows(warehouse, "SELECT * FROM deployment_facts")}
    assert [k for k, r in facts.items() if r["rolled_back"]] == ["v2"]
    assert facts["v2"]["rolled_back_by_deployment_id"] == "back"
    row = one(warehouse, "SELECT * FROM dora_summary")
    # changes v1 v2 v3 v4 v5 (the rollback is not one); failures v2 (rolled back), v3 (failed)
    assert (row["change_deployments_ended"], row["change_failures"]) == (5, 2)
    assert row["change_failure_rate"] == pytest.approx(0.4)
    assert row["launchdarkly_failure_rate"] == pytest.approx(1 / 6)


@pytest.mark.parametrize(("ended", "tier"), [(4, None), (5, "elite")])
def test_a_change_failure_tier_needs_five_ended_changes(warehouse, ended, tier):
    for n in range(ended):
        deploy(warehouse, f"d{n}", T0 + n * H)
    deploy(warehouse, "running", T0 + 9 * H, status="started")
    row = one(warehouse, "SELECT * FROM dora_summary")
    assert (row["change_deployments"], row["change_deployments_ended"]) == (ended + 1, ended)
    assert row["change_failure_rate"] == 0.0
    assert row["dora_change_failure_tier"] == tier


# --------------------------------------------------------------------------- recovery


def test_case4_failures_never_recovered_enter_the_median_at_their_age(warehouse):
    deploy(warehouse, "f1", T0, status="failed")
    deploy(warehouse, "fix", T0 + 20 * M)  # ends T0 + 30 min: recovered in 0.5 h
    deploy(warehouse, "f2", T0 + DAY, status="failed")
    deploy(warehouse, "f3", T0 + DAY + H, status="failed")
    deploy(warehouse, "end", T0 + 5 * DAY + H, application="other")  # the data's end
    row = one(warehouse, "SELECT * FROM dora_summary WHERE application_key = 'api'")
    assert (row["change_failures"], row["recovered"], row["unrecovered"]) == (3, 1, 2)
    assert row["recovery_p50_h"] == pytest.approx(96.0)  # of 0.5, 96 (f3's age), 97 (f2's)
    assert row["recovery_lower_bound"] is True
    assert row["dora_recovery_tier"] == "medium"  # was elite on 0.5 h alone


def test_a_failure_never_recovered_is_as_old_as_the_data(warehouse):
    deploy(warehouse, "f", T0, status="failed")
    deploy(warehouse, "end", T0 + 2 * DAY, application="other")
    row = one(warehouse, "SELECT * FROM failed_deployment_recovery")
    assert (row["recovered"], row["recovery_h"], row["recovered_by_deployment_id"]) == (
        False, None, None
    )  # fmt: skip
    assert row["age_h"] == pytest.approx(48.0)
    summary = one(warehouse, "SELECT * FROM dora_summary WHERE application_key = 'api'")
    assert summary["recovery_p50_h"] == pytest.approx(48.0)
    assert summary["recovery_lower_bound"] is True
    assert summary["dora_recovery_tier"] == "medium"


def test_case5_a_success_that_ended_before_the_failure_did_does_not_recover_it(warehouse):
    deploy(warehouse, "failed", T0, status="failed", ended=T0 + 30 * M)  # 10:00–10:30
    deploy(warehouse, "inside", T0 + 10 * M, ended=T0 + 20 * M)  # 10:10–10:20
    deploy(warehouse, "fix", T0 + 60 * M, ended=T0 + 70 * M)  # 11:00–11:10
    row = one(warehouse, "SELECT * FROM failed_deployment_recovery")
    assert row["recovered_by_deployment_id"] == "fix"
    assert row["recovery_h"] == pytest.approx(70 / 60)  # was 20 min, by "inside"


def test_consecutive_failures_are_each_recovered_by_the_same_success(warehouse):
    deploy(warehouse, "f1", T0, status="failed")
    deploy(warehouse, "f2", T0 + 20 * M, kind="redeployment", status="failed")
    deploy(warehouse, "f3", T0 + 40 * M, status="failed", version="v2")
    deploy(warehouse, "fix", T0 + 60 * M, kind="redeployment", version="v2")  # ends 11:10
    recovered = {
        r["deployment_id"]: (r["recovered_by_deployment_id"], r["recovery_h"])
        for r in rows(warehouse, "SELECT * FROM failed_deployment_recovery")
    }
    # f2 is a redeployment: not a change, so not a change failure
    assert recovered == {"f1": ("fix", pytest.approx(70 / 60)),
                         "f3": ("fix", pytest.approx(30 / 60))}  # fmt: skip
    row = one(warehouse, "SELECT * FROM dora_summary")
    assert row["recovery_p50_h"] == pytest.approx(50 / 60)
    assert row["dora_recovery_tier"] == "elite"


def test_a_rolled_back_change_is_recovered_by_the_rollback(warehouse):
    deploy(warehouse, "v1", T0, version="v1")
    deploy(warehouse, "v2", T0 + H, version="v2")  # 10:00–10:10
    deploy(warehouse, "back", T0 + 2 * H, kind="rollback", version="v1")  # 11:00–11:10
    row = one(warehouse, "SELECT * FROM failed_deployment_recovery")
    assert (row["deployment_id"], row["rolled_back"], row["failed"]) == ("v2", True, False)
    assert (row["recovered_by_deployment_id"], row["recovered_by_kind"]) == ("back", "rollback")
    assert row["recovery_h"] == pytest.approx(70 / 60)


# --------------------------------------------------------------------------- weeks and ranges


def test_case6_weeks_are_filled_with_zeros_to_the_data_end_and_partial_weeks_marked(warehouse):
    deploy(warehouse, "old", T0, application="silent", lead_hours=5)
    deploy(warehouse, "new", T0 + 35 * DAY, application="busy")  # Monday, 5 weeks later
    weeks = rows(
        warehouse,
        "SELECT week_start, deployments, lead_time_p50_h, partial_week FROM dora_weekly"
        " WHERE application_key = 'silent' ORDER BY week_start",
    )
    assert [(w["week_start"], w["deployments"], w["partial_week"]) for w in weeks] == [
        (date(2026, 3, 2), 1, True),  # the data starts on Monday 09:00, not at midnight
        (date(2026, 3, 9), 0, False),
        (date(2026, 3, 16), 0, False),
        (date(2026, 3, 23), 0, False),
        (date(2026, 3, 30), 0, False),
        (date(2026, 4, 6), 0, True),  # the data ends inside it
    ]
    assert weeks[-1]["lead_time_p50_h"] is None  # no lead time this week: not the old 5 h


def test_case7_a_group_without_deployments_in_the_range_has_zeros_and_the_lowest_tier(
    warehouse,
):
    deploy(warehouse, "old", T0, application="silent")
    deploy(warehouse, "new", T0 + 40 * DAY, application="busy")
    row = one(
        warehouse,
        "SELECT * FROM dora_summary_between(DATE '2026-04-01', DATE '2026-04-28')"
        " WHERE application_key = 'silent'",
    )
    assert (row["deployments"], row["successful"], row["deploy_days"]) == (0, 0, 0)
    assert row["median_period_deploy_days"] == 0
    assert row["dora_deployment_frequency_tier"] == "low"
    assert row["lead_time_p50_h"] is None and row["change_failure_rate"] is None


def test_the_previous_range_of_equal_length_and_the_change(warehouse):
    for n in range(3):
        deploy(warehouse, f"before{n}", T0 + n * DAY, lead_hours=10)  # Mar 2–4
    for n in range(6):
        deploy(warehouse, f"now{n}", T0 + (7 + n) * DAY, lead_hours=4)  # Mar 9–14
    row = one(warehouse, "SELECT * FROM dora_summary_between(DATE '2026-03-09', DATE '2026-03-15')")
    assert (row["prev_range_from"], row["prev_range_to"]) == (date(2026, 3, 2), date(2026, 3, 8))
    assert (row["deployments"], row["deployments_prev"], row["deployments_change"]) == (6, 3, 3)
    assert row["lead_time_p50_h_prev"] == pytest.approx(10.0)
    assert row["lead_time_p50_h_change"] == pytest.approx(-6.0)
    assert (row["dora_lead_time_tier"], row["dora_lead_time_tier_prev"]) == ("elite", None)


def test_roll_ups_pool_deployments_rather_than_average_rows(warehouse):
    for n, hours in enumerate((1, 2, 3)):
        deploy(warehouse, f"a{n}", T0 + n * H, application="a", lead_hours=hours)
    for n, hours in enumerate((10, 20)):
        deploy(warehouse, f"b{n}", T0 + n * H, application="b", lead_hours=hours)
    deploy(warehouse, "staging", T0, application="a", environment="staging", lead_hours=99)
    deploy(warehouse, "q", T0, application="a", project="q", lead_hours=7)
    project = one(
        warehouse,
        "SELECT * FROM dora_summary_by_project"
        " WHERE project_key = 'p' AND environment_key = 'production'",
    )
    assert project["lead_time_n"] == 5
    assert project["lead_time_p50_h"] == pytest.approx(3.0)  # the rows' medians average 8.5
    organisation = one(
        warehouse, "SELECT * FROM dora_summary_by_organisation WHERE environment_key = 'production'"
    )
    assert organisation["lead_time_n"] == 6
    assert organisation["lead_time_p50_h"] == pytest.approx(5.0)  # 1 2 3 7 10 20


# --------------------------------------------------------------------------- flags


def _production_and_staging(warehouse) -> None:
    environment(warehouse, "production", critical=True)
    environment(warehouse, "staging", critical=False)


def test_case8_a_flag_still_referenced_in_production_is_not_a_cleanup_candidate(warehouse):
    _production_and_staging(warehouse)
    deploy(warehouse, "add", T0, version="v1")
    flag_reference(warehouse, "add", "kept", 2, 0)
    deploy(warehouse, "remove-one", T0 + DAY, version="v2")
    flag_reference(warehouse, "remove-one", "kept", 0, 1)
    deploy(warehouse, "remove-rest", T0 + 2 * DAY, version="v3", environment="staging")
    flag_reference(warehouse, "remove-rest", "kept", 0, 1)  # never reached production
    assert rows(warehouse, "SELECT * FROM flag_cleanup_candidates") == []


def test_a_flag_whose_references_reached_zero_in_production_is_dated_then(warehouse):
    _production_and_staging(warehouse)
    deploy(warehouse, "add", T0, version="v1")
    flag_reference(warehouse, "add", "gone", 2, 0)
    deploy(warehouse, "remove-staging", T0 + DAY, version="v2", environment="staging")
    flag_reference(warehouse, "remove-staging", "gone", 0, 2)
    deploy(warehouse, "remove", T0 + 2 * DAY, version="v2")
    flag_reference(warehouse, "remove", "gone", 0, 2)
    deploy(warehouse, "redeploy", T0 + 3 * DAY, version="v2", kind="redeployment")
    flag_reference(warehouse, "redeploy", "gone", 0, 2)  # the same version: counted once
    row = one(warehouse, "SELECT * FROM flag_cleanup_candidates")
    assert (row["project_key"], row["flag_key"]) == ("p", "gone")
    assert row["reached_zero_at"] == T0 + 2 * DAY
    assert (row["references_added"], row["references_removed"], row["versions"]) == (2, 2, 2)


def test_every_application_that_referenced_the_flag_must_reach_zero(warehouse):
    deploy(warehouse, "a-add", T0, application="a")
    flag_reference(warehouse, "a-add", "shared", 1, 0)
    deploy(warehouse, "a-remove", T0 + DAY, application="a", version="v2")
    flag_reference(warehouse, "a-remove", "shared", 0, 1)
    deploy(warehouse, "b-add", T0, application="b")
    flag_reference(warehouse, "b-add", "shared", 3, 0)
    assert rows(warehouse, "SELECT * FROM flag_cleanup_candidates") == []
    deploy(warehouse, "b-remove", T0 + 2 * DAY, application="b", version="v2")
    flag_reference(warehouse, "b-remove", "shared", 0, 3)
    row = one(warehouse, "SELECT * FROM flag_cleanup_candidates")
    assert (row["applications"], row["reached_zero_at"]) == (2, T0 + 2 * DAY)


def test_a_reference_added_after_reaching_zero_keeps_the_flag_off_the_list(warehouse):
    deploy(warehouse, "remove", T0, version="v1")
    flag_reference(warehouse, "remove", "back", 0, 2)  # references older than the data
    deploy(warehouse, "add-again", T0 + DAY, version="v2")
    flag_reference(warehouse, "add-again", "back", 1, 1)  # net still below 0, but one added
    assert rows(warehouse, "SELECT * FROM flag_cleanup_candidates") == []


# --------------------------------------------------------------------------- older views


def test_case10_deployment_flags_leaves_archived_deployments_out(warehouse):
    deploy(warehouse, "kept", T0)
    deploy(warehouse, "archived", T0 + H, archived=True)
    for deployment in ("kept", "archived"):
        flag_reference(warehouse, deployment, "f", 1, 0)
    listed = warehouse.execute("SELECT list(deployment_id) FROM deployment_flags").fetchone()
    assert listed == (["kept"],)
