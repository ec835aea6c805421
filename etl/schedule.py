"""`etl schedule`: `sync` on a cron expression or an interval (APScheduler). No business logic.

The sync job never overlaps itself (`max_instances=1`: a time that comes while a run is still
going is skipped); times missed while the process could not run (a suspended machine, a
long run) are merged into one run (`coalesce`) if it can start within `misfire_grace_s`.
SIGTERM or SIGINT cancels the current run, which lets the batch being written commit and
records the run as failed ("interrupted"); the next run resumes where it stopped.

On a DuckLake, `[lake] maintain_cron` adds a second job: `etl lake maintain` in a thread
(it is blocking DuckDB work), never overlapping itself; syncs go on beside it, pausing their
commits while it holds the lake (etl/lake.py). A signal lets its current step end and skips
the rest; a run count reached waits for it to end.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from etl.config import ScheduleSettings, Settings
from etl.cron import cron_trigger
from etl.errors import ConfigError, EtlError
from etl.lake import maintain
from etl.logs import event
from etl.progress import progress_for
from etl.sync import RunReport, sync
from etl.warehouse.ducklake import is_lake

log = logging.getLogger(__name__)

DEFAULT_EVERY_MINUTES = 60.0
EXIT_SIGNALLED = {signal.SIGINT: 130, signal.SIGTERM: 143}


def trigger_for(schedule: ScheduleSettings, every_minutes: float | None = None) -> Any:
    """`--every`, else `[schedule] cron`, else `every_minutes` (default hourly)."""
    if every_minutes is not None:
        return IntervalTrigger(minutes=every_minutes, timezone="UTC")
    if schedule.cron is not None:
        return cron_trigger(schedule.cron)
    return IntervalTrigger(minutes=schedule.every_minutes or DEFAULT_EVERY_MINUTES, timezone="UTC")


def maintenance_trigger_for(settings: Settings) -> Any | None:
    """`[lake] maintain_cron` as a trigger (None: not set).

    Raises:
        ConfigError: it is set, but the warehouse is a DuckDB file.
    """
    cron = settings.lake.maintain_cron
    if cron is None:
        return None
    if not is_lake(settings.warehouse.path):
        raise ConfigError(
            f"[lake] maintain_cron: warehouse.path {settings.warehouse.path} is a DuckDB file; "
            "lake maintenance needs a DuckLake (remove maintain_cron)"
        )
    return cron_trigger(cron)


def describe(trigger: Any) -> str:
    """The trigger as a user wrote it, for the log."""
    return f"every {trigger.interval}" if isinstance(trigger, IntervalTrigger) else str(trigger)


async def run_schedule(
    settings: Settings,
    trigger: Any,
    runs: int | None = None,
    *,
    run_now: bool = False,
    run_sync: Callable[[Settings], Awaitable[RunReport]] | None = None,
    maintenance: Any | None = None,
) -> int:
    """Sync at every time of `trigger`; stop on SIGTERM/SIGINT or after `runs` runs.

    Args:
        settings: what each run syncs.
        trigger: an APScheduler trigger (`trigger_for`; tests pass finer ones).
        runs: stop after this many runs (default: until a signal).
        run_now: run once at start as well, then on the trigger.
        run_sync: the run itself (default: `etl.sync.sync` with the progress display that
            `[log] progress` asks for).
        maintenance: a trigger for `etl lake maintain` (`maintenance_trigger_for`), or None.

    Returns:
        The exit code: the last run's, or 143/130 when a signal interrupted a run.
    """
    run = run_sync or _sync_with_progress
    stop = asyncio.Event()
    codes: list[int] = []
    current: list[asyncio.Task[Any]] = []
    signalled: list[int] = []
    maintaining: list[asyncio.Task[Any]] = []
    halt_maintenance = threading.Event()

    async def job() -> None:
        if stop.is_set():
            return
        with _tracked(current):
            await sync_once()
        if runs is not None and len(codes) >= runs:
            stop.set()
        elif not stop.is_set():
            log.info("next run at %s", _next_time(scheduler), extra=event("run_scheduled"))

    async def sync_once() -> None:
        try:
            report = await run(settings)
        except EtlError as exc:
            log.error("run could not start: %s", exc, extra=event("run_not_started"))
            codes.append(1)
        except asyncio.CancelledError:
            # A signal: the run recorded itself as interrupted. Not re-raised, or
            # APScheduler would log it as a crash with a traceback.
            codes.append(EXIT_SIGNALLED[signal.Signals(signalled[0])] if signalled else 1)
        else:
            codes.append(report.exit_code)

    async def maintenance_job() -> None:
        if stop.is_set():
            return
        with _tracked(maintaining):
            await maintain_once()

    async def maintain_once() -> None:
        lake = settings.lake
        try:
            done = await asyncio.to_thread(maintain, settings.warehouse, lake, halt_maintenance)
        except EtlError as exc:
            log.error("lake maintenance failed: %s", exc, extra=event("lake_maintenance_failed"))
        else:
            log.info("lake %s", done.describe(), extra=event("lake_maintained"))

    def on_signal(signum: int) -> None:
        signalled.append(signum)
        stop.set()
        halt_maintenance.set()  # its thread cannot be cancelled: it stops after its step
        for task in current:
            task.cancel()  # the run commits the batch it is writing, then ends

    scheduler = AsyncIOScheduler(timezone="UTC")
    first: dict[str, Any] = {"next_run_time": datetime.now(UTC)} if run_now else {}
    scheduler.add_job(
        job, trigger, id="sync", max_instances=1, coalesce=True,
        misfire_grace_time=settings.schedule.misfire_grace_s, **first,
    )  # fmt: skip
    if maintenance is not None:
        scheduler.add_job(
            maintenance_job, maintenance, id="maintain", max_instances=1, coalesce=True,
            misfire_grace_time=settings.schedule.misfire_grace_s,
        )  # fmt: skip
    loop = asyncio.get_running_loop()
    for signum in EXIT_SIGNALLED:
        loop.add_signal_handler(signum, on_signal, signum)
    scheduler.start()
    log.info(
        "scheduled: %s (UTC); first run at %s", describe(trigger), _next_time(scheduler),
        extra=event("schedule_started"),
    )  # fmt: skip
    if maintenance is not None:
        log.info(
            "lake maintenance: %s (UTC); first at %s", describe(maintenance),
            _next_time(scheduler, "maintain"), extra=event("maintenance_scheduled"),
        )  # fmt: skip
    try:
        await stop.wait()
        # Shutting down cancels the job's task: let an interrupted run finish recording itself.
        while current or maintaining:
            await asyncio.wait([*current, *maintaining])
    finally:
        scheduler.shutdown(wait=False)
        for signum in EXIT_SIGNALLED:
            loop.remove_signal_handler(signum)
    return codes[-1] if codes else 0


@contextmanager
def _tracked(tasks: list[asyncio.Task[Any]]) -> Iterator[None]:
    """The current task listed in `tasks` while the block runs (shutdown waits for them)."""
    task = asyncio.current_task()
    assert task is not None
    tasks.append(task)
    try:
        yield
    finally:
        tasks.remove(task)


def _next_time(scheduler: AsyncIOScheduler, job_id: str = "sync") -> str:
    job = scheduler.get_job(job_id)
    when = job.next_run_time if job is not None else None
    return f"{when:%Y-%m-%d %H:%M:%S}" if when else "-"


async def _sync_with_progress(settings: Settings) -> RunReport:
    """One run with its progress shown as `[log] progress` says (off a terminal: lines)."""
    observer, display = progress_for(settings.log.progress)
    with display:
        return await sync(settings, observer)
