"""`etl schedule` on a DuckLake with `[lake] maintain_cron`: maintenance beside the syncs."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from etl.config import LakeSettings, load_settings
from etl.lake import maintain
from etl.schedule import run_schedule
from etl.sync import sync
from etl.warehouse.ducklake import DuckLake
from tests.integration.warehouse_truth import warehouse_differences


def lake_settings_for(lake, sandbox):
    values = {
        "api.base_url": sandbox.url,
        "warehouse.path": lake.target,
        "warehouse.data_path": str(lake.data),
        "limits.requests_per_second": 2000.0,
        "sync.window_days": 30.0,
        "sync.batch_records": 100,  # many small files for maintenance to merge
    }
    return load_settings(None, values, {"LD_API_TOKEN": sandbox.config.token})


def ledger(lake) -> list[str]:
    conn = DuckLake(lake.target, lake.settings()).connect(read_only=True)
    try:
        return [row[0] for row in conn.execute("SELECT status FROM etl_runs").fetchall()]
    finally:
        conn.close()


async def test_a_schedule_with_maintain_cron_maintains_the_lake_beside_its_sync(
    sandbox_factory, lake, caplog
):
    caplog.set_level(logging.INFO, logger="etl.schedule")
    async with sandbox_factory(scale="small", latency_ms=5) as sandbox:
        settings = lake_settings_for(lake, sandbox)
        assert (await sync(settings)).exit_code == 0  # files to merge, snapshots to expire
        sandbox.dataset.advance()  # the scheduled run has changes to commit
        now = DateTrigger(datetime.now(UTC))  # maintenance starts with the scheduled sync
        hourly = IntervalTrigger(hours=1, timezone="UTC")
        code = await run_schedule(settings, hourly, runs=1, run_now=True, maintenance=now)
        assert code == 0
        assert warehouse_differences(lake.target, sandbox.dataset.truth(), lake.settings()) == []
    assert ledger(lake) == ["succeeded", "succeeded"]
    maintained = [r.getMessage() for r in caplog.records if r.getMessage().startswith("lake ")]
    assert any(message.startswith("lake maintained in") for message in maintained), maintained
    assert not any("failed" in message for message in maintained), maintained


async def test_maintenance_asked_to_stop_skips_the_steps_not_begun_and_changes_nothing(
    sandbox_factory, lake
):
    async with sandbox_factory(scale="tiny") as sandbox:
        assert (await sync(lake_settings_for(lake, sandbox))).exit_code == 0
    halt = threading.Event()
    halt.set()
    done = maintain(lake.settings(), LakeSettings(keep_snapshots_days=0), halt)
    assert done.complete is False
    assert (done.before.live, done.before.stored) == (done.after.live, done.after.stored)
    assert "stopped early" in done.describe()
