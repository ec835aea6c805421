"""Large records: batches bounded in bytes, and DuckDB's memory for records of ~40 KB."""

from __future__ import annotations

import hashlib
from typing import Any

import duckdb
import pytest

from etl.sync import sync
from tests.integration.warehouse_truth import warehouse_differences

DEPLOYMENTS = "/api/v2/engineering-insights/deployments"


def with_big_metadata(request: Any, body: dict[str, Any]) -> Any:
    """Give every deployment ~40 KB of build metadata (a monorepo's changed-file list)."""
    if request.path == DEPLOYMENTS:
        for item in body["items"]:
            seed = item["id"].encode()
            item["metadata"] = {
                "changedFiles": [
                    f"services/{hashlib.sha1(seed + i.to_bytes(2, 'big')).hexdigest()}.py"
                    for i in range(800)
                ]
            }
    return body


def deployments_in(settings: Any) -> tuple[int, int]:
    with duckdb.connect(str(settings.warehouse.path), read_only=True) as conn:
        rows, smallest = conn.execute(
            "SELECT count(*), coalesce(min(length(metadata)), 0) FROM deployments"
        ).fetchone()
    return rows, smallest


async def test_deployments_of_40_kb_each_load_with_the_default_settings(
    sandbox_factory, settings_for
):
    async with sandbox_factory(scale="small", hook=with_big_metadata) as sandbox:
        settings = settings_for(sandbox, **{"sync.batch_records": 5000})
        report = await sync(settings)
        expected = sum(len(pages) for pages in sandbox.dataset.truth().deployments.values())
    assert report.status == "succeeded", report.error or report.streams_json()
    rows, smallest = deployments_in(settings)
    assert (rows, smallest > 40_000) == (expected, True)


@pytest.mark.parametrize(
    "memory_limit",
    [
        "32MB",  # a COMMIT fails: the batch is rolled back
        "64MB",  # the checkpoint after a COMMIT fails: DuckDB closes the file to writes
    ],
)
async def test_too_little_duckdb_memory_fails_the_run_with_advice_and_a_rerun_completes_it(
    sandbox_factory, settings_for, memory_limit
):
    async with sandbox_factory(scale="small", hook=with_big_metadata) as sandbox:
        starved = settings_for(sandbox, **{"warehouse.memory_limit": memory_limit})
        failed = await sync(starved)
        report = await sync(settings_for(sandbox))
        expected = sum(len(pages) for pages in sandbox.dataset.truth().deployments.values())
    assert failed.status == "failed"
    assert "raise [warehouse] memory_limit" in (failed.error or ""), failed.error
    assert report.status == "succeeded", report.error or report.streams_json()
    assert deployments_in(starved)[0] == expected


async def test_a_batch_closes_at_batch_bytes_of_json(sandbox_factory, settings_for):
    async with sandbox_factory(scale="small") as sandbox:
        settings = settings_for(
            sandbox, **{"sync.batch_records": 5000, "sync.batch_bytes": 300_000}
        )
        report = await sync(settings)
        truth = sandbox.dataset.truth()
    assert report.status == "succeeded", report.error or report.streams_json()
    with duckdb.connect(str(settings.warehouse.path), read_only=True) as conn:
        json_bytes, batches = conn.execute(
            "SELECT sum(length(_raw)), count(DISTINCT _loaded_at) FROM deployments"
        ).fetchone()
    assert batches >= json_bytes // 300_000 >= 3  # one _loaded_at per batch
    assert warehouse_differences(settings.warehouse.path, truth) == []
