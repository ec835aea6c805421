"""Malformed, drifting and looping payloads: a clear error naming what was wrong, nothing lost."""

from __future__ import annotations

import time
from typing import Any

import duckdb

from etl.sync import sync
from tests.integration.warehouse_truth import table_fingerprint, warehouse_differences

DEPLOYMENTS = "/api/v2/engineering-insights/deployments"
NOW_MS = int(time.time() // 60 * 60_000)
"""One data anchor for the module, so two sandboxes in one test serve the same records."""


def on_deployments(change: Any) -> Any:
    """A hook that rewrites deployment pages only."""

    def hook(request: Any, body: dict[str, Any]) -> Any:
        return change(body) if request.path == DEPLOYMENTS else body

    return hook


def first_item(change: Any) -> Any:
    def rewrite(body: dict[str, Any]) -> dict[str, Any]:
        if body["items"]:
            change(body["items"][0])
        return body

    return on_deployments(rewrite)


def count(db: Any, table: str) -> int:
    with duckdb.connect(str(db), read_only=True) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


async def test_repeated_cursor_ends_the_chain_with_a_clear_error(sandbox_factory, settings_for):
    def repeat_cursor(request: Any, body: dict[str, Any]) -> dict[str, Any]:
        after = request.query.get("after")
        if request.path == DEPLOYMENTS and after and "next" in body["_links"]:
            body["_links"]["next"] = {"href": f"{DEPLOYMENTS}?after={after}"}
        return body

    async with sandbox_factory(scale="small", hook=repeat_cursor) as sandbox:
        settings = settings_for(sandbox, **{"sync.page_size": 10})
        report = await sync(settings)
    assert report.status == "partial"
    assert report.exit_code == 3
    errors = report.streams["deployments"].errors
    assert errors and all("the API repeated cursor after=" in e for e in errors)
    assert report.streams["release_policies"].status == "ok"


async def test_missing_required_field_names_record_and_field(sandbox_factory, settings_for):
    async with sandbox_factory(hook=first_item(lambda d: d.pop("applicationKey"))) as sandbox:
        report = await sync(settings_for(sandbox))
    assert report.status == "partial"
    (error,) = report.streams["deployments"].errors
    assert "required field 'applicationKey' is missing" in error
    assert "record '" in error


async def test_unexpected_type_names_record_and_field(sandbox_factory, settings_for):
    def bad_type(item: dict[str, Any]) -> None:
        item["linesAdded"] = "many"

    async with sandbox_factory(hook=first_item(bad_type)) as sandbox:
        report = await sync(settings_for(sandbox))
    (error,) = report.streams["deployments"].errors
    assert "linesAdded: expected an integer, got str 'many'" in error


async def test_unknown_extra_field_is_kept_raw_and_loads(sandbox_factory, settings_for):
    def extra(item: dict[str, Any]) -> None:
        item["riskScore"] = 7

    async with sandbox_factory(hook=first_item(extra)) as sandbox:
        settings = settings_for(sandbox)
        report = await sync(settings)
    assert report.status == "succeeded"
    with duckdb.connect(str(settings.warehouse.path), read_only=True) as conn:
        kept = conn.execute(
            "SELECT count(*) FROM deployments WHERE _raw->>'riskScore' = '7'"
        ).fetchone()[0]
    assert kept > 0


async def test_malformed_json_that_persists_fails_the_stream_after_retries(
    sandbox_factory, settings_for
):
    async with sandbox_factory(hook=on_deployments(lambda body: b'{"items": [')) as sandbox:
        settings = settings_for(sandbox, **{"api.max_attempts": 2})
        report = await sync(settings)
    errors = report.streams["deployments"].errors
    assert errors and "invalid JSON body" in errors[0] and "gave up after 2 attempts" in errors[0]
    assert report.streams["release_pipelines"].status == "ok"


async def test_bad_run_loses_nothing_already_loaded(sandbox_factory, settings_for, tmp_path):
    async with sandbox_factory(now_ms=NOW_MS) as sandbox:
        settings = settings_for(sandbox)
        await sync(settings)
    before = table_fingerprint(settings.warehouse.path)
    bad = first_item(lambda d: d.pop("status"))
    async with sandbox_factory(now_ms=NOW_MS, hook=bad) as sandbox:
        report = await sync(settings_for(sandbox))
    assert report.status == "partial"
    after = table_fingerprint(settings.warehouse.path)
    assert after["deployments"] == before["deployments"]
    assert count(settings.warehouse.path, "deployments") > 0


async def test_a_record_that_does_not_fit_is_kept_raw_and_the_rest_loads(
    sandbox_factory, settings_for
):
    rejected_ids: list[str] = []

    def drop_application_key(item: dict[str, Any]) -> None:
        rejected_ids.append(item["id"])
        item.pop("applicationKey")

    async with sandbox_factory(now_ms=NOW_MS, hook=first_item(drop_application_key)) as sandbox:
        settings = settings_for(sandbox)
        report = await sync(settings)
    assert report.status == "partial" and report.exit_code == 3
    with duckdb.connect(str(settings.warehouse.path), read_only=True) as conn:
        rows = conn.execute("SELECT _raw->>'$.id', error FROM rejected_records").fetchall()
    assert sorted(record_id for record_id, _ in rows) == sorted(set(rejected_ids))
    assert all("required field 'applicationKey' is missing" in error for _, error in rows)
    problems = warehouse_differences(settings.warehouse.path, sandbox.dataset.truth())
    assert problems[0].startswith(f"deployments: {len(rows)} missing")
    assert [p for p in problems if not p.startswith(("deployment", "pull_request"))] == []


async def test_a_rejected_record_loads_once_the_source_is_fixed(sandbox_factory, settings_for):
    bad = first_item(lambda d: d.pop("applicationKey"))
    async with sandbox_factory(now_ms=NOW_MS, hook=bad) as sandbox:
        settings = settings_for(sandbox)
        assert (await sync(settings)).status == "partial"
    async with sandbox_factory(now_ms=NOW_MS) as sandbox:
        second = await sync(settings_for(sandbox))
        assert second.status == "succeeded", second.error
        assert warehouse_differences(settings.warehouse.path, sandbox.dataset.truth()) == []


async def test_a_drift_in_every_record_rejects_the_stream_not_each_record(
    sandbox_factory, settings_for
):
    def drop_everywhere(body: dict[str, Any]) -> dict[str, Any]:
        for item in body["items"]:
            item.pop("applicationKey")
        return body

    async with sandbox_factory(scale="small", hook=on_deployments(drop_everywhere)) as sandbox:
        settings = settings_for(sandbox)
        report = await sync(settings)
    assert report.streams["deployments"].status == "failed"
    (error,) = report.streams["deployments"].errors
    assert "required field 'applicationKey' is missing" in error
    assert "rejected_records" not in error
    assert count(settings.warehouse.path, "rejected_records") == 0


async def test_a_rejected_record_does_not_stop_the_other_streams(sandbox_factory, settings_for):
    # Latency and two requests in flight keep the other streams running while deployments
    # batches are being checked record by record.
    async with sandbox_factory(
        scale="small", latency_ms=30, hook=first_item(lambda d: d.pop("applicationKey"))
    ) as sandbox:
        settings = settings_for(sandbox, **{"sync.batch_records": 100, "limits.max_in_flight": 2})
        report = await sync(settings)
    truth = sandbox.dataset.truth()
    assert report.streams["deployments"].status == "failed"
    problems = warehouse_differences(settings.warehouse.path, truth)
    assert [p for p in problems if not p.startswith(("deployment", "pull_request"))] == []
