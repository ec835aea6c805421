"""Every request buys data: counted from the sandbox's own request log, over real HTTP."""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime, timedelta

import duckdb

from etl.sync import sync
from etl.warehouse.duckdb_file import DuckDBFile
from tests.integration.test_crash import run_cli_signalled_after
from tests.integration.warehouse_truth import warehouse_differences

DEPLOYMENTS = "/api/v2/engineering-insights/deployments"
PAGE = 100


def deployments_floor(truth) -> int:
    """The fewest requests that can read every partition: max(1, ⌈items ÷ page⌉) each."""
    return sum(max(1, math.ceil(len(items) / PAGE)) for items in truth.deployments.values())


def deployment_requests(sandbox) -> list:
    return [r for r in sandbox.requests if r.path == DEPLOYMENTS]


async def test_a_sparse_full_history_costs_exactly_the_floor(sandbox_factory, settings_for):
    # Ten years before the first deployment: a windowed reader paid for every empty window.
    async with sandbox_factory(scale="small") as sandbox:
        settings = settings_for(sandbox).model_copy(
            update={"since": datetime.now(UTC) - timedelta(days=3650)}
        )
        report = await sync(settings)
        requests = deployment_requests(sandbox)
        truth = sandbox.dataset.truth()
    assert report.status == "succeeded", report.streams_json()
    assert len(requests) == deployments_floor(truth)
    assert warehouse_differences(settings.warehouse.path, truth) == []


async def test_every_listing_asks_for_the_largest_page(sandbox_factory, settings_for):
    async with sandbox_factory(scale="tiny") as sandbox:
        await sync(settings_for(sandbox))
        limits = {
            (r.path.rsplit("/", 1)[-1], r.query.get("limit"))
            for r in sandbox.requests
            if r.path.startswith("/api/")
            and "release-policies" not in r.path  # neither is paged
            and "flag-statuses" not in r.path
            and not r.path.endswith("/insights/scores")  # one answer, no paging
        }
    # The Insights groups listing takes at most 20 a page.
    assert {limit for name, limit in limits if name != "groups"} == {str(PAGE)}, limits
    assert {limit for name, limit in limits if name == "groups"} == {"20"}


async def test_a_killed_run_resumes_at_the_page_it_had_not_committed(
    sandbox_factory, settings_for, tmp_path
):
    served: list[tuple[dict[str, str], list[str]]] = []

    def record(request, body):
        if request.path == DEPLOYMENTS:
            served.append((dict(request.query), [item["id"] for item in body["items"]]))
        return body

    config = tmp_path / "config.toml"
    config.write_text("[sync]\nbatch_records = 300\n")  # a commit every three pages
    async with sandbox_factory(scale="medium", latency_ms=10, hook=record) as sandbox:
        settings = settings_for(sandbox)
        env = {**os.environ, "LD_API_TOKEN": sandbox.config.token}
        args = ["sync", "--config", str(config), "--db", str(settings.warehouse.path),
                "--base-url", sandbox.url, "-q"]  # fmt: skip
        await run_cli_signalled_after(args, env, sandbox, pages=50)
        first_run = list(served)
        # A killed run publishes nothing: what it committed is in the sync's working copy.
        working = DuckDBFile(settings.warehouse.path).working
        with duckdb.connect(str(working), read_only=True) as conn:
            rows = conn.execute("SELECT deployment_id FROM deployments").fetchall()
            committed = {row[0] for row in rows}
            (window_from,) = conn.execute("SELECT min(from_at) FROM sync_windows").fetchone()
        served.clear()
        report = await sync(settings)
        truth = sandbox.dataset.truth()
    assert report.status == "succeeded", report.streams_json()
    assert warehouse_differences(settings.warehouse.path, truth) == []
    # The resumed chains are those over the first run's windows (the rest is the new tail).
    start_ms = str((window_from - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1))
    resumed = [ids for query, ids in served if query["from"] == start_ms]
    started = {rep["id"]: rep["startedAt"] for reps in truth.deployments.values() for rep in reps}
    partition_of = {rep["id"]: pair for pair, reps in truth.deployments.items() for rep in reps}
    oldest_committed: dict[tuple[str, str], int] = {}
    for deployment_id in committed:
        pair = partition_of[deployment_id]
        oldest_committed[pair] = min(started[deployment_id], oldest_committed.get(pair, 2**63))
    reread = {i for ids in resumed for i in ids} & committed
    # Of what the first run committed, only the checkpoint's own millisecond is read again.
    assert all(started[i] == oldest_committed[partition_of[i]] for i in reread), reread
    fetched_first = [set(ids) for _, ids in first_run]
    in_flight = sum(1 for ids in fetched_first if not ids <= committed)
    boundary_pages = sum(
        math.ceil((len(reps) - sum(r["id"] in committed for r in reps) + ties) / PAGE)
        - math.ceil((len(reps) - sum(r["id"] in committed for r in reps)) / PAGE)
        for pair, reps in truth.deployments.items()
        if (ties := sum(1 for i in reread if partition_of[i] == pair))
    )
    both_runs = len(first_run) + len(resumed)
    assert both_runs <= deployments_floor(truth) + in_flight + boundary_pages


async def test_an_incremental_run_reads_the_change_and_equals_the_truth(
    sandbox_factory, settings_for
):
    # A period shorter than the time between the runs: the sweep re-reads all history, so
    # archiving anywhere is caught by the next run (the period's guarantee, compressed).
    async with sandbox_factory(scale="small") as sandbox:
        settings = settings_for(sandbox, **{"sync.reverify_days": 1e-9})
        await sync(settings)
        changes = sandbox.dataset.advance()
        report = await sync(settings)
        truth = sandbox.dataset.truth()
    assert report.status == "succeeded", report.streams_json()
    assert changes["deployments_finished"] and changes["deployments_archived"]
    assert warehouse_differences(settings.warehouse.path, truth) == []


async def test_without_the_sweep_the_next_run_still_sees_new_and_finished_deployments(
    sandbox_factory, settings_for
):
    async with sandbox_factory(scale="small") as sandbox:
        settings = settings_for(sandbox, **{"sync.reverify_days": 0})
        await sync(settings)
        sandbox.requests.clear()
        changes = sandbox.dataset.advance()
        report = await sync(settings)
        truth = sandbox.dataset.truth()
        requests = deployment_requests(sandbox)
    assert report.status == "succeeded", report.streams_json()
    assert changes["deployments_finished"] and changes["deployments_added"]
    archived = {rep["id"] for reps in truth.deployments.values() for rep in reps if rep["archived"]}
    problems = warehouse_differences(settings.warehouse.path, truth)
    with duckdb.connect(str(settings.warehouse.path), read_only=True) as conn:
        stale = {
            row[0]
            for row in conn.execute(
                "SELECT deployment_id FROM deployments WHERE NOT archived"
            ).fetchall()
        } & archived
    # Only archiving of deployments that had finished before the first run is left to the sweep.
    assert all(p.startswith("deployments: ") and " differ" in p for p in problems), problems
    assert len(stale) <= changes["deployments_archived"]
    assert len(requests) == len(truth.deployments)  # one page of change per partition


async def test_deployments_not_newest_first_stop_their_partition_with_a_clear_error(
    sandbox_factory, settings_for
):
    # The checkpoint assumes newest first; an API that broke the order could make a resumed
    # run skip deployments, so the chain stops instead.
    def reverse(request, body):
        if request.path == DEPLOYMENTS and len(body["items"]) > 1:
            body["items"] = body["items"][::-1]
        return body

    async with sandbox_factory(scale="tiny", hook=reverse) as sandbox:
        report = await sync(settings_for(sandbox))
    assert report.status == "partial"
    errors = report.streams["deployments"].errors
    assert errors and all("not newest first" in error for error in errors)


FLAG_EVENTS = "/api/v2/engineering-insights/flag-events"


async def test_an_hourly_run_reads_only_new_flag_events_and_the_reverification_slice(
    sandbox_factory, settings_for
):
    served: list[str] = []

    def record(request, body):
        if request.path == FLAG_EVENTS:
            served.extend(item["id"] for item in body["items"])
        return body

    hour_ago = (int(datetime.now(UTC).timestamp()) // 60 - 60) * 60_000
    async with sandbox_factory(scale="small", now_ms=hour_ago, hook=record) as sandbox:
        settings = settings_for(sandbox)
        await sync(settings)
        before = {
            x["id"] for xs in sandbox.dataset.truth().extras["flags"].events.values() for x in xs
        }
        sandbox.requests.clear()
        served.clear()
        sandbox.dataset.advance()  # to now: an hour of new flag events
        report = await sync(settings)
        truth = sandbox.dataset.truth()
        requests = [r for r in sandbox.requests if r.path == FLAG_EVENTS]
    assert report.status == "succeeded", report.streams_json()
    assert warehouse_differences(settings.warehouse.path, truth) == []
    events = truth.extras["flags"].events
    new = {pair: [x["id"] for x in xs if x["id"] not in before] for pair, xs in events.items()}
    assert sum(map(len, new.values())) > 0
    # Every new event, and of the old ones at most one page per pair (the sweep's slice).
    assert set(served) >= {i for ids in new.values() for i in ids}
    assert len(set(served) & before) <= PAGE * len(events)
    # One chain per pair: the tail's pages, joined by the slice's page.
    assert len(requests) <= sum(math.ceil(len(ids) / PAGE) + 1 for ids in new.values())
