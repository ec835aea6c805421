"""The metric views on sandbox data, each against the same metric computed in plain Python.

One warehouse for the module: the small sandbox, synced three times with the world moving
on in between (so releases change phase between snapshots), and equal to the final truth.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import duckdb
import pytest

from etl.config import load_settings
from etl.sandbox import Dataset, SandboxConfig
from etl.sync import sync
from tests.integration.conftest import serve
from tests.integration.metrics_truth import (
    HOUR_MS,
    Dep,
    metric_deployments,
    monday,
    quantile_cont,
    recovery,
    summary,
    utc,
    weekly,
)
from tests.integration.warehouse_truth import warehouse_differences

DAY_MS = 24 * HOUR_MS
ReleaseKey = tuple[str, str, str, int]


@dataclass
class Synced:
    """The warehouse and what the sandbox served at each of its syncs."""

    db: Path
    dataset: Dataset
    truth: Any
    deps: list[Dep]
    # Per sync, in order: release → (status, active phase id).
    states: list[dict[ReleaseKey, tuple[str, str | None]]]


def _states(dataset: Dataset) -> dict[ReleaseKey, tuple[str, str | None]]:
    return {
        (project, pipeline, p.flag_key, p.created_at): (
            "completed" if p.completed_at is not None else "active",
            p.active_phase_id,
        )
        for (project, pipeline), items in dataset.releases.progressions.items()
        for p in items
    }


async def _sync_three_times(db: Path) -> tuple[Dataset, list[dict[ReleaseKey, Any]]]:
    # Anchored three hours back so every advance stays before the wall clock the sync reads up
    # to, and within the lookback (which is counted from the wall clock) of what it changes.
    start = int(time.time() // 60 * 60_000) - 3 * HOUR_MS
    async with serve(SandboxConfig(scale="small", now_ms=start)) as sandbox:
        settings = load_settings(
            None,
            {
                "api.base_url": sandbox.url,
                "warehouse.path": str(db),
                "limits.requests_per_second": 2000.0,
                # Every run re-verifies all history (the sandbox archives deployments of the
                # past week, which a default run leaves to the weekly re-verification).
                "sync.reverify_days": 1e-9,
            },
            {"LD_API_TOKEN": sandbox.config.token},
        )
        states = []
        for step in range(3):
            if step:
                sandbox.dataset.advance(start + step * HOUR_MS)
            report = await sync(settings)
            assert report.status == "succeeded", report.streams_json()
            states.append(_states(sandbox.dataset))
        return sandbox.dataset, states


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Synced:
    db = tmp_path_factory.mktemp("metrics") / "warehouse.duckdb"
    dataset, states = asyncio.run(_sync_three_times(db))
    truth = dataset.truth()
    assert warehouse_differences(db, truth) == []
    return Synced(db, dataset, truth, metric_deployments(truth), states)


@pytest.fixture
def conn(synced: Synced) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(str(synced.db), read_only=True)
    yield connection
    connection.close()


def _rows(conn: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    result = conn.execute(sql)
    columns = [d[0] for d in result.description or []]
    return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]


def _close(actual: dict[str, Any], expected: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The fields of `expected` whose value `actual` does not match (floats to 1e-9)."""
    return {
        key: (actual[key], want)
        for key, want in expected.items()
        if not (
            actual[key] == want
            or (
                isinstance(want, float)
                and actual[key] is not None
                and actual[key] == pytest.approx(want, rel=1e-9, abs=1e-9)
            )
        )
    }


# --------------------------------------------------------------------------- DORA


def test_dora_weekly_has_every_week_with_zeros_and_interpolated_percentiles(synced, conn):
    expected = weekly(synced.deps)
    actual = {
        (r["project_key"], r["environment_key"], r["application_key"], r["week_start"]): r
        for r in _rows(conn, "SELECT * FROM dora_weekly")
    }
    assert actual.keys() == expected.keys()
    differences = {k: d for k in expected if (d := _close(actual[k], expected[k]))}
    assert differences == {}
    # The data exercises what the view must get right:
    zero_weeks = [r for r in expected.values() if r["deployments"] == 0]
    assert zero_weeks and all(r["change_failure_rate"] is None for r in zero_weeks)
    assert any(r["lead_time_n"] >= 3 for r in expected.values())
    assert any(r["recovered"] for r in expected.values())
    assert any(r["partial_week"] for r in expected.values())


def test_the_sandbox_has_every_edge_case_of_the_definitions(synced):
    deps, recovered = synced.deps, recovery(synced.deps)
    by_id = {d.id: d for d in deps}
    end = max(d.started_ms for d in deps)
    overlapped = [
        (f, s)
        for f in deps
        if f.id in recovered
        for s in deps
        if s.group == f.group and s.successful and s.id != f.id
        and f.started_ms <= s.started_ms and (s.ended_ms or 0) <= (f.ended_ms or 0)
    ]  # fmt: skip
    assert overlapped  # a success inside a failure, which must not recover it
    assert all(recovered[f.id][0] != s.id for f, s in overlapped)
    last_start: dict[tuple[str, str, str], int] = {}
    for d in deps:
        last_start[d.group] = max(last_start.get(d.group, 0), d.started_ms)
    assert any(end - at > 35 * DAY_MS for at in last_start.values())  # a silent application
    assert any(d.successful and d.change and not d.pr_ids for d in deps)  # PR-less
    assert any(d.successful and d.kind == "redeployment" for d in deps)
    open_failures = [by_id[i] for i, (by, _h, _age) in recovered.items() if by is None]
    assert any(end - f.started_ms < DAY_MS for f in open_failures)  # unrecovered at the end


def test_failed_deployment_recovery_is_the_first_success_to_end_after_it(synced, conn):
    expected = recovery(synced.deps)
    actual = {
        r["deployment_id"]: (
            r["recovered_by_deployment_id"],
            r["recovery_h"],
            r["recovery_or_age_h"],
        )
        for r in _rows(conn, "SELECT * FROM failed_deployment_recovery")
    }
    assert actual.keys() == expected.keys()
    for key, (by, hours, hours_or_age) in expected.items():
        assert actual[key][0] == by
        assert actual[key][1] == (None if hours is None else pytest.approx(hours, rel=1e-9))
        assert actual[key][2] == pytest.approx(hours_or_age, rel=1e-9, abs=1e-9)
    assert len(expected) > 10


@pytest.mark.parametrize("days", [28, 45])
def test_dora_summary_between_a_range_has_the_four_keys_and_tiers(synced, conn, days):
    last = max(d.day for d in synced.deps)
    first = last - timedelta(days=days - 1)
    expected = summary(synced.deps, first, last)
    actual = {
        (r["project_key"], r["environment_key"], r["application_key"]): r
        for r in _rows(conn, f"SELECT * FROM dora_summary_between(DATE '{first}', DATE '{last}')")
    }
    assert actual.keys() == expected.keys()
    differences = {k: d for k in expected if (d := _close(actual[k], expected[k]))}
    assert differences == {}
    assert all(r["range_from"] == first and r["range_to"] == last for r in actual.values())
    tiers = {r["dora_lead_time_tier"] for r in expected.values()}
    assert len(tiers) >= 2


def test_dora_summary_covers_the_last_28_days_of_data_not_of_the_clock(synced, conn):
    last = max(d.day for d in synced.deps)
    expected = summary(synced.deps, last - timedelta(days=27), last)
    actual = _rows(conn, "SELECT * FROM dora_summary")
    assert {(r["project_key"], r["environment_key"], r["application_key"]) for r in actual} == (
        expected.keys()
    )


# --------------------------------------------------------------------------- pull requests


def test_pull_request_cycle_time_per_environment_reached(synced, conn):
    prs = {
        pr["id"]: pr
        for reps in synced.truth.deployments.values()
        for rep in reps
        for pr in rep["pullRequests"]["items"]
    }
    first: dict[tuple[str, str, str, str], Dep] = {}
    for dep in sorted(synced.deps, key=lambda d: (d.started_ms, d.id)):
        if not dep.successful or dep.kind == "rollback":
            continue
        for pr_id in dep.pr_ids:
            first.setdefault((pr_id, dep.project, dep.application, dep.environment), dep)
    expected = {}
    for key, dep in first.items():
        pr = prs[key[0]]
        assert dep.ended_ms is not None
        merged = pr.get("mergeTime")
        expected[key] = {
            "first_deployment_id": dep.id,
            "review_h": None if merged is None else (merged - pr["createTime"]) / HOUR_MS,
            "merge_to_deploy_h": None if merged is None else (dep.ended_ms - merged) / HOUR_MS,
            "cycle_h": (dep.ended_ms - pr["createTime"]) / HOUR_MS,
        }
    reached: defaultdict[tuple[str, str, str], list[tuple[int, str]]] = defaultdict(list)
    for (pr_id, project, app, env), dep in first.items():
        assert dep.ended_ms is not None
        reached[(pr_id, project, app)].append((dep.ended_ms, env))
    for (pr_id, project, app), stops in reached.items():
        stops.sort()
        for n, (at, env) in enumerate(stops):
            before = stops[n - 1] if n else None
            expected[(pr_id, project, app, env)] |= {
                "previous_environment_key": before and before[1],
                "from_previous_environment_h": before and (at - before[0]) / HOUR_MS,
            }
    assert any(len(stops) >= 3 for stops in reached.values())
    rows = _rows(conn, "SELECT * FROM pull_request_cycle_time")
    actual = {
        (r["pull_request_id"], r["project_key"], r["application_key"], r["environment_key"]): r
        for r in rows
        if r["environment_key"] is not None
    }
    assert actual.keys() == expected.keys()
    assert {k: d for k in expected if (d := _close(actual[k], expected[k]))} == {}
    # The Insights listing's pull requests that reached no environment, once each.
    shipped = {pr_id for pr_id, *_ in first}
    unshipped = {
        (pr["id"], project): pr["status"]
        for project, listed in synced.truth.extras["teams"].pull_requests.items()
        for pr in listed
        if pr["id"] not in shipped
    }
    alone = [r for r in rows if r["environment_key"] is None]
    assert {(r["pull_request_id"], r["project_key"]): r["status"] for r in alone} == unshipped
    assert len(alone) == len(unshipped)
    assert {"open", "closed"} <= set(unshipped.values())
    assert all((r["open_age_h"] is not None) == (r["status"] == "open") for r in alone)
    assert all(r["closed_unmerged"] == (r["status"] == "closed") for r in alone)


# --------------------------------------------------------------------------- flags


def _versions(deps: list[Dep]) -> dict[tuple[str, str, str, str, str], tuple[int, int, int]]:
    """(flag project, flag, project, app, version) → (first deployment ms, added, removed)."""
    out: dict[tuple[str, str, str, str, str], tuple[int, int, int]] = {}
    for dep in deps:
        for flag_project, flag, added, removed in dep.flags:
            key = (flag_project, flag, dep.project, dep.application, dep.version)
            if key not in out or dep.started_ms < out[key][0]:
                out[key] = (dep.started_ms, added, removed)
    return out


def test_flag_reference_churn_counts_a_version_once(synced, conn):
    expected: defaultdict[tuple[str, str, date], dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(("deployments", "versions", "references_added",
                               "references_removed", "pull_requests"), 0)
    )  # fmt: skip
    for dep in synced.deps:
        for flag_project, flag, _added, _removed in dep.flags:
            expected[(flag_project, flag, dep.week)]["deployments"] += 1
    for (flag_project, flag, *_), (at, added, removed) in _versions(synced.deps).items():
        row = expected[(flag_project, flag, monday(utc(at).date()))]
        row["versions"] += 1
        row["references_added"] += added
        row["references_removed"] += removed
    # Pull requests with flag references: the Insights listing's, in their merge (else
    # creation) week.
    for prs in synced.truth.extras["teams"].pull_requests.values():
        for pr in prs:
            week = monday(utc(pr.get("mergeTime", pr["createTime"])).date())
            for ref in pr["flagReferences"]["items"]:
                expected[(ref["projectKey"], ref["flagKey"], week)]["pull_requests"] += 1
    actual = {
        (r["flag_project_key"], r["flag_key"], r["week_start"]): r
        for r in _rows(conn, "SELECT * FROM flag_reference_churn")
    }
    assert actual.keys() == expected.keys()
    assert {k: d for k in expected if (d := _close(actual[k], expected[k]))} == {}
    assert any(r["deployments"] > r["versions"] for r in expected.values())


def test_flag_cleanup_candidates_net_references_reached_zero_in_production(synced, conn):
    critical = {
        (project, env["key"])
        for project, envs in synced.truth.environments.items()
        for env in envs
        if env.get("critical")
    }
    projects_with_critical = {project for project, _ in critical}
    shipping = [
        d
        for d in synced.deps
        if d.successful
        and ((d.project, d.environment) in critical or d.project not in projects_with_critical)
    ]
    # flag → application → versions in order: (first shipped ms, added, removed)
    per_flag: defaultdict[tuple[str, str], defaultdict[Any, list[tuple[int, str, int, int]]]] = (
        defaultdict(lambda: defaultdict(list))
    )
    for (flag_project, flag, project, app, version), (at, added, removed) in _versions(
        shipping
    ).items():
        per_flag[(flag_project, flag)][(project, app)].append((at, version, added, removed))
    expected = {}
    for key, apps in per_flag.items():
        zero_at = []
        for changes in apps.values():
            net, since = 0, None
            for at, _version, added, removed in sorted(changes):
                net += added - removed
                since = (since or at) if net <= 0 else None
            zero_at.append(since)
        if any(at is None for at in zero_at):
            continue
        reached = max(at for at in zero_at if at is not None)
        added_since = any(
            added > 0 and at > reached
            for changes in apps.values()
            for at, _version, added, _removed in changes
        )
        if not added_since:
            expected[key] = reached
    actual = {
        (r["project_key"], r["flag_key"]): r["reached_zero_at"]
        for r in _rows(conn, "SELECT * FROM flag_cleanup_candidates")
    }
    assert {k: int(v.timestamp() * 1000) for k, v in actual.items()} == expected
    assert expected and expected.keys() != per_flag.keys()


# --------------------------------------------------------------------------- releases


def _phases(truth: Any) -> dict[tuple[str, str], list[str]]:
    return {
        (project, pipeline["key"]): [phase["id"] for phase in pipeline["phases"]]
        for project, pipelines in truth.release_pipelines.items()
        for pipeline in pipelines
    }


def test_release_funnel_counts_active_reached_and_completed_per_phase(synced, conn):
    expected = {}
    for pair, phase_ids in _phases(synced.truth).items():
        releases = synced.truth.release_progressions.get(pair, [])
        completed = sum("_completedAt" in r for r in releases)
        positions = [phase_ids.index(r["activePhaseId"]) for r in releases if "activePhaseId" in r]
        for index, phase_id in enumerate(phase_ids):
            reached = completed + sum(p >= index for p in positions)
            expected[(*pair, index)] = {
                "phase_id": phase_id,
                "releases": len(releases),
                "active_now": sum(p == index for p in positions),
                "reached": reached,
                "completed": completed,
                "reached_share": reached / len(releases) if releases else None,
            }
    actual = {
        (r["project_key"], r["pipeline_key"], r["phase_index"]): r
        for r in _rows(conn, "SELECT * FROM release_funnel")
    }
    assert actual.keys() == expected.keys()
    assert {k: d for k in expected if (d := _close(actual[k], expected[k]))} == {}
    assert any(0 < r["reached_share"] < 1 for r in expected.values() if r["reached_share"])


def _observed(conn: duckdb.DuckDBPyConnection) -> list[dict[ReleaseKey, Any]]:
    """Per sync in order, when the warehouse saw each release (the sync's clock, not data)."""
    by_run: defaultdict[str, dict[ReleaseKey, Any]] = defaultdict(dict)
    for run_id, project, pipeline, flag, created, observed in conn.execute(
        "SELECT run_id, project_key, pipeline_key, flag_key, epoch_ms(created_at), observed_at "
        "FROM release_progression_snapshots"
    ).fetchall():
        by_run[run_id][(project, pipeline, flag, created)] = observed
    runs = [
        r for (r,) in conn.execute("SELECT run_id FROM etl_runs ORDER BY started_at").fetchall()
    ]
    return [by_run[run] for run in runs]


def _expected_stays(synced: Synced, conn: duckdb.DuckDBPyConnection) -> dict[Any, dict[str, Any]]:
    phases = _phases(synced.truth)
    current = {
        (project, pipeline, r["flagKey"], r["_createdAt"])
        for (project, pipeline), reps in synced.truth.release_progressions.items()
        for r in reps
    }
    observed = _observed(conn)
    latest = max(at for sightings in observed for at in sightings.values())
    expected = {}
    for key in current:
        phase_ids = phases[key[:2]]
        seen = [(observed[n][key], *synced.states[n][key]) for n in range(3) if key in observed[n]]
        for at, status, phase_id in seen:
            if status != "active" or (key, phase_id) in expected:
                continue
            index = phase_ids.index(phase_id)
            left = next(
                (
                    later
                    for later, s, p in seen
                    if later > at and (s == "completed" or phase_ids.index(p) > index)
                ),
                None,
            )
            # A release starts in the first phase at its creation; a later phase's entry is
            # seen only when an earlier sighting exists.
            entered = utc(key[3]) if index == 0 else at
            expected[(key, phase_id)] = {
                "entered_at": entered,
                "entry_observed": index == 0 or at != seen[0][0],
                "first_sighting": at == seen[0][0],
                "left_at": left,
                "duration_h": None if left is None else (left - entered).total_seconds() / 3600,
                "in_phase_so_far_h": (
                    (latest - entered).total_seconds() / 3600 if left is None else None
                ),
            }
    return expected


def test_release_phase_durations_from_the_snapshots_of_each_sync(synced, conn):
    expected = _expected_stays(synced, conn)
    actual = {
        ((r["project_key"], r["pipeline_key"], r["flag_key"], r["created_ms"]), r["phase_id"]): r
        for r in _rows(
            conn, "SELECT *, epoch_ms(created_at) AS created_ms FROM release_phase_durations"
        )
    }
    assert actual.keys() == expected.keys()
    assert {k: d for k in expected if (d := _close(actual[k], expected[k]))} == {}
    assert any(r["left_at"] is not None for r in expected.values())


def test_phase_stats_and_stalled_releases_use_the_phase_p90(synced, conn):
    stays = _expected_stays(synced, conn)
    ended: defaultdict[tuple[str, str, str], list[float]] = defaultdict(list)
    for (key, phase_id), stay in stays.items():
        if stay["duration_h"] is not None and stay["entry_observed"]:
            ended[(*key[:2], phase_id)].append(stay["duration_h"])
    stats = {
        (r["project_key"], r["pipeline_key"], r["phase_id"]): r
        for r in _rows(conn, "SELECT * FROM release_phase_duration_stats")
    }
    for phase, durations in ended.items():
        assert stats[phase]["stays_ended"] == len(durations)
        assert stats[phase]["duration_p90_h"] == pytest.approx(quantile_cont(durations, 0.9))
    active = {
        (project, pipeline, r["flagKey"], r["_createdAt"]): r["activePhaseId"]
        for (project, pipeline), reps in synced.truth.release_progressions.items()
        for r in reps
        if "activePhaseId" in r
    }

    # Stays after the first phase last seconds (the syncs' clock is the wall clock), so a
    # release can sit exactly at its phase's p90, depending on how far apart the syncs ran.
    # Decided in exact microseconds: a stay equal to the p90 is not over it, whatever the
    # float rounding.
    observed = _observed(conn)
    latest = max(at for sightings in observed for at in sightings.values())
    micro = timedelta(microseconds=1)
    ended_us: defaultdict[tuple[str, str, str], list[int]] = defaultdict(list)
    for (key, phase_id), stay in stays.items():
        if stay["left_at"] is not None and stay["entry_observed"]:
            ended_us[(*key[:2], phase_id)].append((stay["left_at"] - stay["entered_at"]) // micro)
    current = {
        (key, phase_id): (
            (latest - stay["entered_at"]) // micro,
            quantile_cont(ended_us.get((*key[:2], phase_id), []), Fraction(9, 10)),
        )
        for (key, phase_id), stay in stays.items()
        if active.get(key) == phase_id and stay["left_at"] is None and stay["entry_observed"]
    }
    expected = {k for k, (so_far, p90) in current.items() if p90 is not None and so_far > p90}
    actual = {
        ((r["project_key"], r["pipeline_key"], r["flag_key"], r["created_ms"]), r["phase_id"])
        for r in _rows(conn, "SELECT *, epoch_ms(created_at) AS created_ms FROM stalled_releases")
    }
    assert actual == expected
    assert expected and expected != set(current)  # stalled releases, and releases that are not
    longer = {
        (key, phase_id)
        for (key, phase_id), stay in stays.items()
        if active.get(key) == phase_id and stay["left_at"] is None and stay["entry_observed"]
        and stay["in_phase_so_far_h"] > 0.5 * 24
    }  # fmt: skip
    actual_longer = {
        ((r["project_key"], r["pipeline_key"], r["flag_key"], r["created_ms"]), r["phase_id"])
        for r in _rows(
            conn,
            "SELECT *, epoch_ms(created_at) AS created_ms FROM stalled_releases_longer_than(0.5)",
        )
    }
    assert actual_longer == longer


# --------------------------------------------------------------------------- README


def test_every_query_of_the_readme_questions_runs(conn):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Questions you can answer", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sql", 1)[1].split("```", 1)[0]
    code = "\n".join(line.split("--", 1)[0] for line in block.splitlines())
    queries = [q.strip() for q in code.split(";") if q.strip()]
    assert len(queries) >= 10
    for query in queries:
        conn.execute(query).fetchall()
