"""The ownership and Insights streams against the sandbox: equal to its truth, run after run."""

from __future__ import annotations

import duckdb

from etl.sync import sync
from tests.integration.warehouse_truth import table_fingerprint, warehouse_differences


async def test_every_new_table_equals_the_truth_and_a_second_run_changes_nothing(
    sandbox_factory, settings_for
):
    async with sandbox_factory(scale="small") as sandbox:
        settings = settings_for(sandbox)
        first = await sync(settings)
        assert first.status == "succeeded", first.streams_json()
        assert warehouse_differences(settings.warehouse.path, sandbox.dataset.truth()) == []
        before = table_fingerprint(settings.warehouse.path)
        second = await sync(settings)
    assert second.status == "succeeded", second.streams_json()
    assert table_fingerprint(settings.warehouse.path) == before


async def test_insight_scores_keep_one_row_set_per_run(sandbox_factory, settings_for):
    async with sandbox_factory(scale="tiny") as sandbox:
        settings = settings_for(sandbox)
        runs = [(await sync(settings)).run_id for _ in range(2)]
    with duckdb.connect(str(settings.warehouse.path), read_only=True) as conn:
        per_run = conn.execute(
            "SELECT run_id, count(*) FROM insight_scores GROUP BY ALL ORDER BY run_id"
        ).fetchall()
        (distinct,) = conn.execute(
            "SELECT count(*) FROM (SELECT DISTINCT * EXCLUDE (run_id, _loaded_at) "
            "FROM insight_scores)"
        ).fetchone()
    assert [run for run, _ in per_run] == sorted(runs)
    assert per_run[0][1] == per_run[1][1] == distinct


async def test_an_advance_is_applied_owner_moves_and_new_pull_requests(
    sandbox_factory, settings_for
):
    async with sandbox_factory(scale="small") as sandbox:
        settings = settings_for(sandbox)
        await sync(settings)
        sandbox.dataset.advance()
        report = await sync(settings)
    assert report.status == "succeeded", report.streams_json()
    assert warehouse_differences(settings.warehouse.path, sandbox.dataset.truth()) == []


async def test_people_are_not_stored(sandbox_factory, settings_for):
    async with sandbox_factory(scale="small") as sandbox:
        settings = settings_for(sandbox)
        await sync(settings)
    with duckdb.connect(str(settings.warehouse.path), read_only=True) as conn:
        raws = " ".join(r for (r,) in conn.execute("SELECT _raw FROM applications").fetchall())
        teams = " ".join(r for (r,) in conn.execute("SELECT _raw FROM teams").fetchall())
        owned = conn.execute(
            "SELECT count(*) FROM applications WHERE maintainer_member_id IS NOT NULL"
        ).fetchone()[0]
    assert owned > 0
    assert "@" not in raws and "firstName" not in raws
    assert "members" not in teams


PULL_REQUESTS = "/api/v2/engineering-insights/pull-requests"


async def test_an_hourly_run_reads_the_new_pull_requests_and_the_lookback_not_the_history(
    sandbox_factory, settings_for
):
    async with sandbox_factory(scale="small") as sandbox:
        settings = settings_for(sandbox, **{"sync.reverify_days": 0})
        first = await sync(settings)
        listed = sandbox.dataset.truth().extras["teams"].pull_requests
        sandbox.requests.clear()
        sandbox.dataset.advance()
        second = await sync(settings)
        requests = [r for r in sandbox.requests if r.path == PULL_REQUESTS]
        truth = sandbox.dataset.truth().extras["teams"]
    history = sum(map(len, truth.pull_requests.values()))
    read = second.streams["pull_requests"].records
    assert first.streams["pull_requests"].records == sum(map(len, listed.values()))
    # One page per project: the pull requests created since the last run's end (less
    # SETTLE), back to the oldest merged one within lookback, out of a 120-day history.
    assert len(requests) == len(truth.pull_requests)
    lookback_ms = settings.sync.lookback_hours * 3_600_000
    started = second.started_at.timestamp() * 1000
    assert all(int(r.query["from"]) >= started - lookback_ms - 60_000 for r in requests)
    assert 0 < read < history / 5
