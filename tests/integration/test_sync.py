"""`sync()` against the sandbox over real HTTP, into a real DuckDB file."""

from __future__ import annotations

import duckdb
import orjson

from etl.config import Stream
from etl.sync import sync
from etl.warehouse.duckdb_file import DuckDBFile
from tests.integration.warehouse_truth import table_fingerprint, warehouse_differences


async def test_sync_loads_exactly_the_sandbox_truth(sandbox_factory, settings_for):
    async with sandbox_factory(scale="small") as sandbox:
        settings = settings_for(sandbox)
        report = await sync(settings)
    assert report.status == "succeeded", report.streams_json()
    assert warehouse_differences(settings.warehouse.path, sandbox.dataset.truth()) == []


async def test_medium_scale_with_faults_and_rate_limit_equals_truth(sandbox_factory, settings_for):
    async with sandbox_factory(
        scale="medium", fault_rate=0.05, rate=400, rate_window_s=1.0
    ) as sandbox:
        settings = settings_for(sandbox)
        report = await sync(settings)
    assert report.status == "succeeded", report.streams_json()
    assert report.retries > 0
    assert warehouse_differences(settings.warehouse.path, sandbox.dataset.truth()) == []


async def test_dropped_connections_under_a_rate_limit_cost_no_429(sandbox_factory, settings_for):
    # A dropped keep-alive connection must be retried through the rate limiter: a resend
    # behind its back (aiohttp's own) spends budget the limiter did not count.
    async with sandbox_factory(
        scale="small", rate=20, rate_window_s=1.0, fault_rate=0.1, fault_kinds=("drop",)
    ) as sandbox:
        settings = settings_for(sandbox)
        report = await sync(settings)
        served_429 = sum(1 for record in sandbox.requests if record.status == 429)
    assert report.status == "succeeded", report.streams_json()
    assert report.retries > 0
    assert (served_429, report.rate_limited) == (0, 0)
    assert warehouse_differences(settings.warehouse.path, sandbox.dataset.truth()) == []


async def test_second_run_changes_nothing(sandbox_factory, settings_for):
    async with sandbox_factory(scale="tiny") as sandbox:
        settings = settings_for(sandbox)
        await sync(settings)
        before = table_fingerprint(settings.warehouse.path)
        report = await sync(settings)
    assert report.status == "succeeded"
    assert table_fingerprint(settings.warehouse.path) == before


async def test_run_after_the_source_changes_applies_exactly_the_change(
    sandbox_factory, settings_for
):
    async with sandbox_factory(scale="small") as sandbox:
        settings = settings_for(sandbox)
        await sync(settings)
        changes = sandbox.dataset.advance()
        report = await sync(settings)
    assert report.status == "succeeded", report.streams_json()
    assert any(changes.values())
    assert warehouse_differences(settings.warehouse.path, sandbox.dataset.truth()) == []


async def test_incremental_run_reads_only_the_lookback(sandbox_factory, settings_for):
    async with sandbox_factory(scale="small") as sandbox:
        settings = settings_for(sandbox)
        first = await sync(settings)
        second = await sync(settings)
    assert second.requests < first.requests


async def test_cursor_href_carrying_only_after_keeps_the_chain_params(
    sandbox_factory, settings_for
):
    async with sandbox_factory(scale="small", next_href="after-only") as sandbox:
        settings = settings_for(sandbox, **{"sync.page_size": 20})
        report = await sync(settings)
    assert report.status == "succeeded", report.streams_json()
    assert warehouse_differences(settings.warehouse.path, sandbox.dataset.truth()) == []


async def test_no_page_is_fetched_twice_without_faults(sandbox_factory, settings_for):
    async with sandbox_factory(scale="tiny") as sandbox:
        await sync(settings_for(sandbox))
        fetched = [(r.path, tuple(sorted(r.query.items()))) for r in sandbox.requests]
    assert len(fetched) == len(set(fetched))


async def test_stream_selection_reads_only_those_streams(sandbox_factory, settings_for):
    async with sandbox_factory(scale="tiny") as sandbox:
        settings = settings_for(sandbox, **{"sync.streams": ["release_policies"]})
        report = await sync(settings)
        paths = {r.path for r in sandbox.requests}
    assert report.status == "succeeded"
    assert not any("deployments" in p or "release-pipelines" in p for p in paths)
    with duckdb.connect(str(settings.warehouse.path), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM release_policies").fetchone()[0] > 0
        assert conn.execute("SELECT count(*) FROM deployments").fetchone()[0] == 0


WRONG_TOKEN = "api-00000000-0000-4000-8000-000000000000"


async def test_wrong_token_fails_the_run_and_records_it_unpublished(sandbox_factory, settings_for):
    async with sandbox_factory(scale="tiny") as sandbox:
        settings = settings_for(sandbox)
        settings = settings.model_copy(update={"token": type(settings.token)(WRONG_TOKEN)})
        report = await sync(settings)
    assert report.status == "failed"
    assert report.exit_code == 1
    assert "HTTP 401" in (report.error or "")
    assert WRONG_TOKEN not in (report.error or "")
    working = DuckDBFile(settings.warehouse.path).working
    with duckdb.connect(str(working), read_only=True) as conn:
        assert conn.execute("SELECT status FROM etl_runs").fetchall() == [("failed",)]
    assert not settings.warehouse.path.exists()


async def test_ledger_records_counts_per_stream(sandbox_factory, settings_for):
    async with sandbox_factory(scale="tiny") as sandbox:
        settings = settings_for(sandbox)
        report = await sync(settings)
    truth = sandbox.dataset.truth().counts()
    assert report.streams[Stream.DEPLOYMENTS.value].records == truth["deployments"]
    with duckdb.connect(str(settings.warehouse.path), read_only=True) as conn:
        status, requests = conn.execute("SELECT status, requests FROM etl_runs").fetchone()
    assert (status, requests) == ("succeeded", report.requests)


def _stream_of(path: str) -> str:
    """The stream a sandbox request path belongs to (the ETL's tagging, from the server's side)."""
    if "/engineering-insights/deployments" in path:
        return "deployments"
    if path.endswith("/releases"):
        return "release_progressions"
    if "/release-pipelines" in path:
        return "release_pipelines"
    if "/release-policies" in path:
        return "release_policies"
    if path.endswith("/environments"):
        return "environments"
    if "/engineering-insights/flag-events" in path:
        return "flag_events"
    if path.startswith("/api/v2/flag-statuses/"):
        return "flag_statuses"
    if path.startswith("/api/v2/flags/"):
        return "flags"
    named = {
        "/api/v2/applications": "applications",
        "/api/v2/teams": "teams",
        "/api/v2/engineering-insights/insights/groups": "insight_groups",
        "/api/v2/engineering-insights/insights/scores": "insight_scores",
        "/api/v2/engineering-insights/pull-requests": "pull_requests",
    }
    return named.get(path, "projects")


async def test_ledger_charges_every_request_to_its_stream(sandbox_factory, settings_for):
    async with sandbox_factory(scale="tiny", fault_rate=0.1, fault_kinds=("500",)) as sandbox:
        settings = settings_for(sandbox)
        report = await sync(settings)
        served: dict[str, int] = {}
        for record in sandbox.requests:
            served[_stream_of(record.path)] = served.get(_stream_of(record.path), 0) + 1
    assert report.status == "succeeded", report.streams_json()
    with duckdb.connect(str(settings.warehouse.path), read_only=True) as conn:
        (streams,) = conn.execute("SELECT streams FROM etl_runs").fetchone()
    ledger = orjson.loads(streams)
    assert {name: s["api"]["requests"] for name, s in ledger.items()} == served
    for name, stream in ledger.items():
        api = stream["api"]
        assert api["requests"] == api["pages"] + api["retries"], name
    assert ledger["deployments"]["api"]["records"] == ledger["deployments"]["records"]
    assert sum(s["api"]["retries"] for s in ledger.values()) == report.retries > 0
