"""`sync(settings) -> RunReport`: extract → normalize → load, the only module wiring all three.

```
StreamReader chains ──Fetched──► bounded queue ──► loader: batch → normalize → merge_batch
   (asyncio, aiohttp)              (backpressure)     (two threads; one transaction per batch)
```
Pages flow through a bounded queue into batches of `sync.batch_records` records or
`sync.batch_bytes` of JSON, whichever comes first, so memory stays flat however long the
history and however large the records. The loader runs Polars and DuckDB in worker threads so
the event loop keeps requests in flight while a batch is written: one thread that only
normalizes and one that alone uses the warehouse connection. Always the same two threads,
not a pool: Polars and DuckDB each allocate through their own jemalloc, which keeps freed
memory in per-thread caches and arenas, so work spread over a pool's changing threads holds
that memory several times over (a large sync peaked at ~650 MB through the default pool and
~575 MB through two fixed threads, and ran ~0.4 s faster).

Failure rule: an error confined to one partition (a 404 pipeline, a forbidden environment, a
record that does not fit its schema) is recorded for its stream and the rest of the run goes
on; the run ends `partial`. A rejected token (401) or a warehouse failure ends the run
`failed`. Committed batches are kept in every case.

Readers see end-of-run states only: the sync writes its own working copy and publishes it
(`Writer.publish`) when a run ends `succeeded` or `partial`; a failed or killed run leaves
readers the last published state.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import duckdb
import polars as pl

from etl.apistats import RequestLedger, StreamRequests
from etl.client import ApiClient, RetryPolicy
from etl.config import Settings, Stream, insecure_http, size_bytes
from etl.errors import DataError, EtlError, WarehouseError
from etl.extract.registry import EXTRACTS
from etl.extract.streams import StreamReader
from etl.lastrun import record_last_run
from etl.logs import event, run_context
from etl.normalize import NORMALIZERS, Batch, UnknownFields
from etl.normalize.rejects import find_rejects, rejects_frame, without
from etl.progress import RunObserver
from etl.ratelimit import RateLimiter
from etl.records import Fetched, Mark, StreamRejected
from etl.state import Timeline, Window, finish_run, plan_windows, start_run
from etl.warehouse import (
    Staged,
    Writer,
    duplicate_keys,
    memory_for_records,
    open_warehouse,
    set_memory_limit,
    stage,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# Fetched pages the readers may hold ahead of the loader. A CPU-bound sync fills any queue
# (the readers outpace Polars and DuckDB), so its depth is memory, not speed: a large sync
# peaked 5-8 MB lower at 16 pages than at 64, and was no slower.
QUEUE_UNITS = 16
# Runs whose end state readers get: a failed run's committed batches stay in the sync's
# working copy (the next run builds on them) but readers keep the last published state.
PUBLISHED = ("succeeded", "partial")
FLUSH_AFTER_S = 2.0


@dataclass
class StreamReport:
    """One stream's outcome: records loaded and the partitions that failed."""

    records: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """What was accepted with doubt (a listing whose count disagrees with its items)."""

    @property
    def status(self) -> str:
        """`ok`, or `failed` when any partition of the stream failed."""
        return "failed" if self.errors else "ok"


@dataclass
class RunReport:
    """What a run did: the ledger row, as a value."""

    run_id: str
    started_at: datetime
    ended_at: datetime | None = None
    status: str = "running"
    streams: dict[str, StreamReport] = field(default_factory=dict)
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    error: str | None = None
    api: RequestLedger = field(default_factory=RequestLedger)
    """Per-stream requests, pages, 429s, retries, waits: the client's live counters."""

    @property
    def exit_code(self) -> int:
        """0 succeeded, 3 partial (some streams failed, the rest loaded), 1 failed."""
        return {"succeeded": 0, "partial": 3}.get(self.status, 1)

    def streams_json(self) -> dict[str, Any]:
        """Per-stream summary for the ledger: outcome, rows loaded, what the requests bought."""
        requests = self.api.snapshot()
        return {
            name: {
                "status": r.status,
                "records": r.records,
                "errors": r.errors[:20],
                "api": requests.get(name, StreamRequests().as_json()),
                **({"warnings": r.warnings[:20]} if r.warnings else {}),
            }
            for name, r in self.streams.items()
        }


class _Done:
    """Sentinel: extraction finished."""


class _Run:
    """The state of one run: queue, reports, and the warehouse connection."""

    def __init__(self, settings: Settings, writer: Writer, report: RunReport):
        self.settings = settings
        self.writer = writer
        self.report = report
        self.queue: asyncio.Queue[Fetched | _Done] = asyncio.Queue(maxsize=QUEUE_UNITS)
        self.normalizer = ThreadPoolExecutor(1, thread_name_prefix="etl-normalize")
        self.warehouse = ThreadPoolExecutor(1, thread_name_prefix="etl-warehouse")
        self.db_lock = asyncio.Lock()
        self.rejected: set[Stream] = set()
        self.unknown = UnknownFields()
        self.now = report.started_at
        self.observer: RunObserver | None = None
        self.memory_limit = size_bytes(settings.warehouse.memory_limit)
        for stream in Stream:
            if stream in settings.sync.streams or stream in (Stream.PROJECTS, Stream.ENVIRONMENTS):
                report.streams[stream.value] = StreamReport()

    @property
    def conn(self) -> duckdb.DuckDBPyConnection:
        """The writer's connection now (a lake writer reopens one that DuckDB invalidated)."""
        return self.writer.conn

    def close(self) -> None:
        """Stop the worker threads (idle by now: every call into them was awaited)."""
        self.normalizer.shutdown()
        self.warehouse.shutdown()

    def fail(self, stream: Stream, where: str, error: EtlError) -> None:
        message = f"{where}: {error}"
        failed = event("stream_failed", stream=stream.value)
        log.error("%s failed: %s", stream.value, message, extra=failed)
        self.report.streams.setdefault(stream.value, StreamReport()).errors.append(message)

    def warn(self, stream: Stream, message: str) -> None:
        self.report.streams.setdefault(stream.value, StreamReport()).warnings.append(message)

    async def emit(self, unit: Fetched) -> None:
        if unit.stream in self.rejected:
            raise StreamRejected
        await self.queue.put(unit)

    async def plan(
        self, project_key: str, environments: Sequence[str], timeline: Timeline
    ) -> list[Window]:
        """The windows of `timeline`'s stream this run reads for the project (`state.py`)."""
        settings = self.settings
        end = min(settings.until, self.now) if settings.until else self.now
        async with self.db_lock:
            planning = partial(
                plan_windows,
                partitions=[(project_key, env) for env in environments],
                run_id=self.report.run_id,
                backfill_start=settings.backfill_start(self.now),
                end=end,
                lookback=timedelta(hours=settings.sync.lookback_hours),
                force_start=settings.since is not None,
                reverify=timedelta(days=settings.sync.reverify_days),
                page_size=settings.sync.page_size,
                timeline=timeline,
            )
            windows: list[Window] = await _in_thread_to_completion(
                self.warehouse,
                self.writer.retrying,
                planning,
                f"planning {timeline.stream} windows",
            )
        if self.observer is not None:
            self.observer.windows_planned(windows)
        return windows

    async def load_forever(self) -> None:
        """Batch units from the queue and load each batch; return after the sentinel.

        Two stages overlap: while one batch is merged into DuckDB, the next is normalized
        by Polars (both release the GIL), so a CPU-bound run uses both cores. At most one
        merge is in flight, and merges commit in the order the batches were formed.
        """
        loop = asyncio.get_running_loop()
        pending: list[Fetched] = []
        merging: asyncio.Task[None] | None = None
        records = size = 0
        deadline = 0.0
        try:
            while True:
                # `asyncio.timeout`, not `wait_for`: on Python 3.11 `wait_for` can swallow a
                # cancellation that arrives as the queue hands over an item, and the run
                # then waits forever for a sentinel that a cancelled reader never sends.
                try:
                    async with asyncio.timeout_at(deadline if pending else None):
                        unit = await self.queue.get()
                except TimeoutError:
                    unit = None
                if isinstance(unit, Fetched):
                    if not pending:
                        deadline = loop.time() + FLUSH_AFTER_S
                    pending.append(unit)
                    records, size = records + len(unit.items), size + unit.size
                    limits = self.settings.sync
                    if records < limits.batch_records and size < limits.batch_bytes:
                        continue
                if pending:
                    normalized = await _in_thread_to_completion(
                        self.normalizer, self.normalize_units, pending
                    )
                    pending, records, size = [], 0, 0
                    if merging is not None:
                        await merging
                    merging = asyncio.create_task(self.merge(normalized))
                if isinstance(unit, _Done):
                    if merging is not None:
                        await merging
                    return
        finally:
            if merging is not None:
                # Never leave a merge running on the connection the caller is about to use.
                await asyncio.wait([merging])
                if not merging.cancelled():
                    merging.exception()  # retrieved: it was raised above, or another error was

    def normalize_units(self, units: Sequence[Fetched]) -> _Normalized:
        """Normalize one batch (worker thread).

        Records that do not fit are set aside (`rejected_records`) and the rest loads; a
        stream whose data cannot be explained record by record is left out of this and
        every later batch, while the other streams of the batch are still committed.
        """
        batch = Batch(self.report.run_id, datetime.now(UTC), self.unknown)
        by_stream: dict[Stream, list[Fetched]] = defaultdict(list)
        for unit in units:
            if unit.stream not in self.rejected:
                by_stream[unit.stream].append(unit)
        # Streams that write the same table (pull requests from deployments and from the
        # Insights listing) go to separate parts, merged in order: each stream's rows replace
        # its own children only, and the later read wins a key.
        parts: list[tuple[dict[str, pl.DataFrame], list[Mark]]] = [({}, [])]
        rejected: list[pl.DataFrame] = []
        loaded: dict[Stream, int] = {}
        for stream, stream_units in by_stream.items():
            outcome = self._normalize_stream(stream, stream_units, batch)
            if outcome is None:
                continue
            frames, loaded_units, rejects = outcome
            if parts[-1][0].keys() & frames.keys():
                parts.append(({}, []))
            parts[-1][0].update(frames)
            if rejects is not None:
                rejected.append(rejects)
            parts[-1][1].extend(mark for unit in loaded_units for mark in unit.marks)
            loaded[stream] = sum(len(unit.items) for unit in loaded_units)
        if rejected:
            parts[0][0]["rejected_records"] = pl.concat(rejected)
        largest = max((len(item) for unit in units for item in unit.items), default=0)
        # Staged here, off the warehouse thread.
        staged = [(stage(frames), marks) for frames, marks in parts]
        return _Normalized(batch.loaded_at, staged, loaded, largest)

    def _normalize_stream(
        self, stream: Stream, units: Sequence[Fetched], batch: Batch
    ) -> tuple[dict[str, pl.DataFrame], Sequence[Fetched], pl.DataFrame | None] | None:
        """Frames, the units they came from and the rejected records; None: stream rejected."""
        normalize = NORMALIZERS[stream]
        try:
            return normalize(units, batch), units, None
        except DataError as exc:
            error = exc
        rejects = find_rejects(units, normalize, batch)
        if rejects is not None:
            loadable = without(units, rejects)
            try:
                frames = normalize(loadable, batch)
            except DataError as exc:
                error = exc
            else:
                self.fail(
                    stream,
                    "data",
                    DataError(
                        f"{len(rejects)} record(s) kept in rejected_records instead of loaded; "
                        f"the first: {rejects[0].error}"
                    ),
                )
                return frames, loadable, rejects_frame(units, rejects, batch)
        self.rejected.add(stream)
        self.fail(stream, "data", error)
        return None

    async def merge(self, normalized: _Normalized) -> None:
        """Commit one normalized batch (worker thread, one transaction), then count it.

        DuckDB's memory limit is raised first if the batch holds records larger than any
        before it whose checkpoint would not fit (never lowered within a run: their rows stay
        in the table's last row group).
        """
        async with self.db_lock:
            needed = memory_for_records(normalized.largest)
            if needed > self.memory_limit:
                log.info(
                    "records of up to %d KB: DuckDB's memory limit raised to %d MB for this run",
                    normalized.largest // 1000,
                    needed // 10**6,
                )
                await _in_thread_to_completion(self.warehouse, set_memory_limit, self.conn, needed)
                self.memory_limit = needed
            for staged, marks in normalized.parts:
                await _in_thread_to_completion(
                    self.warehouse,
                    self.writer.merge_batch,
                    staged,
                    marks,
                    run_id=self.report.run_id,
                    now=normalized.loaded_at,
                )
        for stream, count in normalized.loaded.items():
            self.report.streams.setdefault(stream.value, StreamReport()).records += count
        log.debug(
            "batch committed: %s",
            ", ".join(f"{stream.value} {count}" for stream, count in normalized.loaded.items()),
            extra={
                "event": "batch_committed",
                "counts": {stream.value: count for stream, count in normalized.loaded.items()},
            },
        )


@dataclass(frozen=True)
class _Normalized:
    """One batch ready to merge, and the records it holds per stream.

    Its parts are staged rows with the marks they complete, one transaction each, in order.
    """

    loaded_at: datetime
    parts: list[tuple[Staged, list[Mark]]]
    loaded: dict[Stream, int]
    largest: int
    """The size of its largest record, in bytes."""


async def _in_thread_to_completion(
    thread: ThreadPoolExecutor, func: Callable[..., T], /, *args: Any, **kwargs: Any
) -> T:
    """`func` on `thread`; a cancelled caller still waits for it to finish.

    A thread cannot be stopped; returning early would let the caller close or reuse the
    DuckDB connection while the thread still writes through it.
    """
    work = asyncio.get_running_loop().run_in_executor(thread, partial(func, *args, **kwargs))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        await asyncio.wait([work])
        if not work.cancelled():
            work.exception()  # retrieved: the cancellation is what the caller reports
        raise


def _first_etl_error(group: BaseExceptionGroup[Any]) -> BaseException:
    """The error to report from a task group: an EtlError if there is one."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first_etl_error(exc)
        if isinstance(exc, EtlError):
            return exc
    return group.exceptions[0]


async def _run(run: _Run, api: ApiClient) -> None:
    reader = StreamReader(
        api,
        run.settings,
        emit=run.emit,
        plan=run.plan,
        fail=run.fail,
        warn=run.warn,
        extracts=EXTRACTS,
    )

    async def extract() -> None:
        await reader.read_all()
        await run.queue.put(_Done())

    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(run.load_forever())
            group.create_task(extract())
    except BaseExceptionGroup as group_error:
        raise _first_etl_error(group_error) from None
    finally:
        run.close()


def new_run_id(now: datetime) -> str:
    """Sortable and unique: `20261123T101500Z-1a2b3c`."""
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def run_options(settings: Settings) -> dict[str, Any]:
    """What the run was asked to do, for the ledger (the token is not part of it)."""
    return settings.model_dump(mode="json", exclude={"token"})


async def sync(settings: Settings, observer: RunObserver | None = None) -> RunReport:
    """Run one batch: every selected stream from the API into the warehouse.

    Returns the report (also written to `etl_runs`). Raises only for problems before the
    run could be recorded (the warehouse cannot be opened or migrated).
    """
    now = datetime.now(UTC)
    # Millisecond precision, like the API's timestamps: a coarser start would leave records
    # that started earlier in the same second after the run's last window.
    started = now.replace(microsecond=now.microsecond // 1000 * 1000)
    report = RunReport(run_id=new_run_id(started), started_at=started)
    with run_context(report.run_id):
        return await _sync(settings, report, observer)


async def _sync(settings: Settings, report: RunReport, observer: RunObserver | None) -> RunReport:
    started = report.started_at
    if insecure_http(settings.api.base_url):
        log.warning(
            "INSECURE: api.allow_insecure_http = true: the token goes unencrypted to %s",
            settings.api.base_url,
        )
    writer = open_warehouse(settings.warehouse.path, settings.warehouse).writer()
    try:
        writer.migrate()
        writer.retrying(
            lambda conn: start_run(conn, report.run_id, started, run_options(settings)),
            "recording the run in etl_runs",
        )
        record_last_run(settings.warehouse.path, _ledger_row(report))
        log.info(
            "run started: %s into %s", settings.api.base_url, settings.warehouse.path,
            extra=event("run_started"),
        )  # fmt: skip
        run = _Run(settings, writer, report)
        limiter = RateLimiter(
            settings.limits.requests_per_second,
            settings.limits.max_in_flight,
            budget_share=settings.limits.budget_share,
        )
        api = ApiClient(
            settings.api.base_url,
            settings.token,
            limiter,
            timeout_s=settings.api.timeout_s,
            retry=RetryPolicy(
                max_attempts=settings.api.max_attempts, max_wait_s=settings.api.max_wait_s
            ),
            max_connections=settings.limits.max_in_flight,
            ca_bundle=settings.api.ca_bundle,
        )
        report.api = api.stats
        if observer is not None:
            scope = settings.scope
            observer.run_started(report.run_id, api.stats, scope.projects, scope.environments)
            api.on_page = observer.page
            run.observer = observer
        try:
            async with api:
                await _run(run, api)
        except EtlError as exc:
            report.status, report.error = "failed", str(exc)
        except (asyncio.CancelledError, KeyboardInterrupt):
            report.status, report.error = "failed", "interrupted"
            raise
        else:
            failed = any(stream.errors for stream in report.streams.values())
            report.status = "partial" if failed else "succeeded"
            if failed:
                report.error = "some streams failed; see streams"
            doubled = writer.retrying(duplicate_keys, "checking for doubled keys")
            if doubled:
                report.status = "failed"
                report.error = f"the warehouse holds doubled keys: {'; '.join(doubled[:3])}"
        finally:
            report.ended_at = datetime.now(UTC)
            report.requests = api.stats.requests
            report.retries = api.stats.retries
            report.rate_limited = api.stats.rate_limited
            try:
                ended_at = report.ended_at

                def finishing(conn: duckdb.DuckDBPyConnection) -> None:
                    finish_run(
                        conn,
                        report.run_id,
                        ended_at=ended_at,
                        status=report.status,
                        streams=report.streams_json(),
                        requests=report.requests,
                        retries=report.retries,
                        rate_limited=report.rate_limited,
                        error=report.error,
                    )

                writer.retrying(finishing, "recording the run in etl_runs")
                if report.status in PUBLISHED:
                    writer.publish(report.run_id)
            except duckdb.Error as exc:  # e.g. DuckDB invalidated the file after a failure
                report.status = "failed"
                reason = str(exc).splitlines()[0]
                unrecorded = f"the run could not be recorded in etl_runs: {reason}"
                report.error = f"{report.error}; {unrecorded}" if report.error else unrecorded
            except WarehouseError as exc:  # the copy for readers; a lake's ledger write
                report.status = "failed"
                report.error = f"{report.error}; {exc}" if report.error else str(exc)
    finally:
        writer.close()
        if report.ended_at is not None:
            record_last_run(settings.warehouse.path, _ledger_row(report))
        if report.ended_at is not None:
            _log_outcome(report)
    return report


def _ledger_row(report: RunReport) -> dict[str, Any]:
    """The run's ledger row as `etl status` reads it from `lastrun`."""
    return {
        "run_id": report.run_id,
        "status": report.status,
        "started_at": report.started_at.isoformat(),
        "ended_at": report.ended_at.isoformat() if report.ended_at else None,
        "requests": report.requests,
        "rate_limited": report.rate_limited,
        "error": report.error,
        "streams": report.streams_json(),
    }


def _log_outcome(report: RunReport) -> None:
    """One record for the run with its counts and each stream's; per stream at DEBUG."""
    for name, stream in report.streams.items():
        log.debug(
            "%s: %s, %d records", name, stream.status, stream.records,
            extra=event(
                "stream_finished", stream=name, records=stream.records, errors=len(stream.errors)
            ),
        )  # fmt: skip
    took = (report.ended_at - report.started_at).total_seconds() if report.ended_at else None
    level = logging.INFO if report.status == "succeeded" else logging.WARNING
    log.log(
        level,
        "run %s %s%s", report.run_id, report.status, f": {report.error}" if report.error else "",
        extra={
            **event(
                "run_finished",
                status=report.status,
                records=sum(stream.records for stream in report.streams.values()),
                requests=report.requests,
                retries=report.retries,
                rate_limited=report.rate_limited,
                seconds=round(took, 3) if took is not None else None,
            ),
            "streams": report.streams_json(),
        },
    )  # fmt: skip
