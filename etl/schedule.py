"""`etl schedule`: run `sync` now and then on an interval with APScheduler. No business logic.

One job, never overlapping itself (`max_instances=1`); runs missed while one was still going
are merged into one (`coalesce`). SIGINT/SIGTERM stop the scheduler once the current run ends.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from etl.config import Settings
from etl.sync import sync

log = logging.getLogger(__name__)


async def run_schedule(settings: Settings, every_minutes: float, runs: int | None = None) -> int:
    """Sync now and every `every_minutes`; stop on a signal or after `runs` runs.

    Returns:
        The exit code of the last run.
    """
    stop = asyncio.Event()
    codes: list[int] = []

    async def job() -> None:
        report = await sync(settings)
        codes.append(report.exit_code)
        log.info("run %s %s (%d requests)", report.run_id, report.status, report.requests)
        if runs is not None and len(codes) >= runs:
            stop.set()

    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.add_job(
        job, "interval", minutes=every_minutes, max_instances=1, coalesce=True,
        next_run_time=datetime.now(UTC),
    )  # fmt: skip
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    scheduler.start()
    try:
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    return codes[-1] if codes else 0
