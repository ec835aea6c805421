"""Large records: batches bounded in bytes, and DuckDB's memory for records of 40–80 KB."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import duckdb
import pytest

import etl.sync
from etl.sync import sync
from tests.integration.warehouse_truth import warehouse_differences

DEPLOYMENTS = "/api/v2/engineering-insights/deployments"


def with_metadata_of(kb: int) -> Any:
    """A sandbox hook giving every deployment `kb` KB of build metadata (changed files)."""

    def hook(request: Any, body: dict[str, Any]) -> Any:
        if request.path == DEPLOYMENTS:
            for item in body["items"]:
                seed = item["id"].encode()
                item["metadata"] = {
                    "changedFiles": [
                        f"services/{hashlib.sha1(seed + i.to_bytes(2, 'big')).hexdigest()}.py"
                        for i in range(kb * 20)  # 50 bytes each
                    ]
                }
        return body

    return hook


def deployments_in(settings: Any) -> tuple[int, int]:
    with duckdb.connect(str(settings.warehouse.path), read_only=True) as conn:
        rows, smallest = conn.execute(
            "SELECT count(*), coalesce(min(length(metadata)), 0) FROM deployments"
        ).fetchone()
    return rows, smallest


@pytest.mark.parametrize("kb", [40, 80])  # 80 KB records need ~190 MB to checkpoint
async def test_deployments_of_tens_of_kb_each_load_with_the_default_settings(
    sandbox_factory, settings_for, caplog, kb
):
    caplog.set_level(logging.INFO, logger="etl.sync")
    async with sandbox_factory(scale="small", hook=with_metadata_of(kb)) as sandbox:
        settings = settings_for(sandbox, **{"sync.batch_records": 5000})
        report = await sync(settings)
        expected = sum(len(pages) for pages in sandbox.dataset.truth().deployments.values())
    assert report.status == "succeeded", report.error or report.streams_json()
    rows, smallest = deployments_in(settings)
    assert (rows, smallest > kb * 1000) == (expected, True)
    assert any("DuckDB's memory limit raised" in r.message for r in caplog.records)


@pytest.mark.parametrize(
    "memory_limit",
    [
        "32MB",  # a COMMIT fails: the batch is rolled back
        "64MB",  # the checkpoint after a COMMIT fails: DuckDB closes the file to writes
    ],
)
async def test_when_duckdb_runs_out_of_memory_the_run_fails_with_advice_and_a_rerun_completes(
    sandbox_factory, settings_for, monkeypatch, memory_limit
):
    async with sandbox_factory(scale="small", hook=with_metadata_of(40)) as sandbox:
        starved = settings_for(sandbox, **{"warehouse.memory_limit": memory_limit})
        with monkeypatch.context() as patch:  # as if the estimate of what records need fell short
            patch.setattr(etl.sync, "memory_for_records", lambda largest: 0)
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
