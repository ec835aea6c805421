"""The count rule: `totalCount` catches drift, not a server whose count is steadily wrong."""

from __future__ import annotations

import itertools
from typing import Any

import duckdb
import orjson
import pytest

from etl.sync import sync
from tests.integration.warehouse_truth import warehouse_differences

LISTED = ("projects", "environments", "release_pipelines", "release_progressions")


def ledger_streams(db: Any) -> dict[str, Any]:
    with duckdb.connect(str(db), read_only=True) as conn:
        (streams,) = conn.execute("SELECT streams FROM etl_runs").fetchone()
    return orjson.loads(streams)


@pytest.mark.parametrize("wrong_count", [0, 1, 10_000])
async def test_a_steadily_wrong_count_is_loaded_with_a_warning(
    sandbox_factory, settings_for, wrong_count, caplog
):
    async with sandbox_factory(scale="small", listing_total_count=wrong_count) as sandbox:
        settings = settings_for(sandbox, **{"sync.page_size": 10})
        report = await sync(settings)
        assert warehouse_differences(settings.warehouse.path, sandbox.dataset.truth()) == []
    assert (report.status, report.exit_code) == ("succeeded", 0)
    streams = ledger_streams(settings.warehouse.path)
    for name in LISTED:
        assert streams[name]["status"] == "ok"
        assert any("totalCount disagrees with its items" in w for w in streams[name]["warnings"])
    assert "the same on a re-read; loaded the items it served" in caplog.text


async def test_a_listing_that_keeps_changing_fails_only_its_partition(
    sandbox_factory, settings_for
):
    """Every read of one pipeline's releases leaves out a different release: real drift."""
    reads = itertools.count()
    drifting: dict[str, str] = {}

    def drift(request: Any, body: dict[str, Any]) -> dict[str, Any]:
        if request.path.endswith("/releases") and request.path.startswith(drifting["path"]):
            items = body["items"]
            del items[next(reads) % len(items)]
        return body

    async with sandbox_factory(scale="tiny", hook=drift) as sandbox:
        project = sandbox.dataset.projects[0]["key"]
        pipeline = sandbox.dataset.releases.pipelines[project][0]["key"]
        drifting["path"] = f"/api/v2/projects/{project}/release-pipelines/{pipeline}"
        settings = settings_for(sandbox)
        report = await sync(settings)
        truth = sandbox.dataset.truth()
    assert (report.status, report.exit_code) == ("partial", 3)
    (error,) = report.streams["release_progressions"].errors
    assert f"releases of pipeline {project}/{pipeline}" in error
    assert "the listing kept changing while it was read" in error
    truth.release_progressions[(project, pipeline)] = []
    assert warehouse_differences(settings.warehouse.path, truth) == []
