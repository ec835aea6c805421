"""`etl schedule`: cron fires `sync`, runs never overlap, SIGTERM stops cleanly."""

from __future__ import annotations

import itertools
import os
import signal

import duckdb
from apscheduler.triggers.cron import CronTrigger

from etl.schedule import run_schedule
from etl.sync import sync
from etl.warehouse.duckdb_file import DuckDBFile
from tests.integration.processes import run_cli, run_cli_signalled_after
from tests.integration.warehouse_truth import warehouse_differences


def ledger(db) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as conn:
        return conn.execute(
            "SELECT run_id, status, error, started_at, ended_at FROM etl_runs ORDER BY started_at"
        ).fetchall()


async def test_a_cron_schedule_fires_sync_and_never_overlaps_runs(sandbox_factory, settings_for):
    # Every second (APScheduler's own seconds field; the user-facing config is 5-field cron),
    # against a slow sandbox: runs take longer than a second, so times come while one runs.
    every_second = CronTrigger(second="*", timezone="UTC")
    started: list[str] = []
    running = 0
    most_at_once = 0

    async def counted_sync(settings):
        nonlocal running, most_at_once
        running += 1
        most_at_once = max(most_at_once, running)
        try:
            report = await sync(settings)
        finally:
            running -= 1
        started.append(report.run_id)
        return report

    async with sandbox_factory(latency_ms=150) as sandbox:
        settings = settings_for(sandbox, **{"limits.max_in_flight": 2})
        code = await run_schedule(settings, every_second, runs=3, run_sync=counted_sync)
    assert code == 0
    assert most_at_once == 1
    rows = ledger(settings.warehouse.path)
    assert [run_id for run_id, *_ in rows] == started
    assert [status for _, status, *_ in rows] == ["succeeded"] * 3
    for (*_, ended), (*_, next_started, _) in itertools.pairwise(rows):
        assert next_started >= ended


async def test_sigterm_stops_the_schedule_after_the_current_batch_and_the_next_run_resumes(
    sandbox_factory, tmp_path
):
    db = tmp_path / "warehouse.duckdb"
    config = tmp_path / "config.toml"
    config.write_text(
        "[limits]\nrequests_per_second = 2000\n[sync]\nwindow_days = 30\nbatch_records = 500\n"
        "[schedule]\nevery_minutes = 60\n"
    )
    async with sandbox_factory(scale="medium", latency_ms=10) as sandbox:
        env = {**os.environ, "LD_API_TOKEN": sandbox.config.token}
        common = ["--config", str(config), "--db", str(db), "--base-url", sandbox.url]
        code = await run_cli_signalled_after(
            ["schedule", *common], env, sandbox, pages=20, signum=signal.SIGTERM
        )
        assert code == 143
        assert not db.exists()  # a failed run publishes nothing; its ledger is the sync's
        ((_, status, error, _, ended),) = ledger(DuckDBFile(db).working)
        assert (status, error) == ("failed", "interrupted") and ended is not None
        assert await run_cli(["sync", *common, "-q"], env) == 0
        assert warehouse_differences(db, sandbox.dataset.truth()) == []
