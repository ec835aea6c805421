"""The scenarios: each starts its sandbox(es), runs the programs, and returns figures.

Bounded scenarios are reported as ratios to a bound computed from the same run (the pages
the sandbox actually answered), so a noisy 2-core machine moves numerator and denominator
together. Every figure is the median of the runs that fit the scenario's time budget.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console

from bench.inproc import capture_deployment_pages, time_stages
from bench.procs import Sandbox
from bench.report import Figure
from bench.runners import EtlConfig, Runner, RunResult
from etl.config import SyncSettings

T = TypeVar("T")

UNTHROTTLED = EtlConfig(requests_per_second=1000.0, max_in_flight=8)
# The rate-limited scenario measures how closely a run keeps to the budget it may spend, so it
# spends the whole of it (the default `budget_share` of 0.8 is measured by `bench.economy`).
WHOLE_BUDGET = EtlConfig(
    requests_per_second=1000.0, max_in_flight=8, overrides=(("limits.budget_share", "1.0"),)
)


@dataclass
class Plan:
    """Scales, knobs and time budgets (seconds) of one benchmark invocation."""

    runs: int = 3
    rate: float = 20.0
    rate_window_s: float = 1.0
    ld_rate_window_s: float = 10.0
    rate_scale: str = "medium"
    latency_ms: float = 100.0
    latency_scale: str = "medium"
    latency_in_flight: int = 2
    cpu_scale: str = "large"
    peer_scale: str = "large"
    incremental_scale: str = "medium"
    code: Path | None = None
    """Another checkout to run `etl` from in the request-economy scenarios (before/after)."""
    budgets: dict[str, float] = field(
        default_factory=lambda: {
            "rate": 60.0,
            "rate-peer": 40.0,
            "rate-ld": 15.0,
            "latency": 70.0,
            "cpu": 130.0,
            "stages": 50.0,
            "peer": 200.0,
            "incremental": 40.0,
            "memory": 15.0,
            "floor-sparse": 30.0,
            "floor-dense": 60.0,
            "budget": 100.0,
            "hourly": 60.0,
            "resume": 40.0,
            "ducklake-cpu": 120.0,
            "ducklake-rate": 90.0,
        }
    )


@dataclass
class Context:
    runner: Runner
    token: str
    workdir: Path
    now_ms: int
    plan: Plan
    console: Console
    figures: list[Figure] = field(default_factory=list)
    runs: dict[str, Any] = field(default_factory=dict)
    rss: dict[str, list[float]] = field(default_factory=dict)

    def log(self, message: str) -> None:
        self.console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {message}")

    def sandbox(self, scale: str, **knobs: Any) -> Sandbox:
        sandbox = Sandbox(
            scale=scale, token=self.token, logdir=self.workdir, now_ms=self.now_ms, **knobs
        )
        sandbox.start()
        self.log(f"sandbox {scale} {knobs or ''} up in {sandbox.startup_s:.1f}s at {sandbox.url}")
        return sandbox

    def warm(self, sandbox: Sandbox) -> None:
        """One unmeasured `etl sync` against a fresh sandbox.

        The sandbox renders each page on its first request (~1 s of its CPU at large, on the
        cores the sync shares), which would otherwise fall on the first measured run alone.
        """
        started = time.perf_counter()
        warm = self.runner.etl_sync(sandbox, UNTHROTTLED)
        if not warm.ok:
            raise RuntimeError(f"warm-up sync failed: {warm.error}")
        self.log(f"  warm-up sync (not measured) in {time.perf_counter() - started:.1f}s")

    def repeat(self, key: str, work: Callable[[int], T]) -> list[T]:
        """Run `work` up to `plan.runs` times, stopping early when the budget would be spent."""
        budget = self.plan.budgets.get(key, float("inf"))
        results: list[T] = []
        started = time.perf_counter()
        for index in range(self.plan.runs):
            before = time.perf_counter()
            results.append(work(index))
            took = time.perf_counter() - before
            spent = time.perf_counter() - started
            if index + 1 < self.plan.runs and spent + took > budget:
                self.log(f"{key}: {index + 1} run(s); another would pass the {budget:.0f}s budget")
                break
        return results

    def record(self, key: str, results: list[RunResult]) -> None:
        self.runs.setdefault(key, []).extend(result.as_json() for result in results)

    def repeat_runs(
        self, key: str, label: str, run: Callable[[], RunResult], *, sandbox: Sandbox | None = None
    ) -> list[RunResult]:
        """`repeat` one measured run per round, each logged as `label #n`.

        With `sandbox`, every run starts at the beginning of a rate-limit window, so runs
        are comparable with the pages ÷ rate bound.
        """

        def once(index: int) -> RunResult:
            if sandbox is not None:
                sandbox.wait_for_window()
            result = run()
            self.describe(f"{label} #{index + 1}", result)
            return result

        return self.repeat(key, once)

    def describe(self, label: str, result: RunResult) -> None:
        state = "ok" if result.ok else f"[red]{result.error}[/]"
        self.log(
            f"  {label}: {result.wall_s:6.2f}s wall, {result.cpu_s:6.2f}s cpu, "
            f"{result.peak_rss_mb:6.0f} MB, {result.pages} pages, {result.served_429} × 429, "
            f"{result.records} records, {state}"
        )


def _failed(results: list[RunResult]) -> str:
    bad = [r for r in results if not r.ok or r.status not in ("succeeded", "")]
    if not bad:
        return ""
    first = bad[0]
    return f"{len(bad)}/{len(results)} runs failed: {first.error or first.status}"


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


# --------------------------------------------------------------------------- rate-limited


def rate_limited(ctx: Context) -> None:
    """20 req/s: our sync and the dlt peer against a rate-limited sandbox.

    The bound pages ÷ rate is a true lower bound only when the window is short: with
    LaunchDarkly's 10 s windows a client may spend 200 requests at once, so a run of a few
    windows can finish well before pages ÷ rate. The measured figure therefore uses 1 s
    windows (a 20-request budget per second); one run with 10 s windows is reported as well,
    for its 429 count and as a reminder of the difference.
    """
    plan = ctx.plan
    rate, window = plan.rate, plan.rate_window_s
    setting = f"{plan.rate_scale} · {rate:g} req/s in {window:g} s windows"
    ctx.log(f"[bold]rate-limited[/]: {setting}")
    sandbox = ctx.sandbox(plan.rate_scale, rate=rate, rate_window_s=window)
    try:
        our_runs = ctx.repeat_runs(
            "rate", "ours", lambda: ctx.runner.etl_sync(sandbox, WHOLE_BUDGET), sandbox=sandbox
        )
        dlt_runs = ctx.repeat_runs(
            "rate-peer", "dlt ", lambda: ctx.runner.dlt_peer(sandbox), sandbox=sandbox
        )
    finally:
        sandbox.stop()
    ld_runs: list[RunResult] = []
    ld_window = plan.ld_rate_window_s
    if ld_window and ld_window != window and ctx.plan.budgets.get("rate-ld", 0) > 0:
        ctx.log(f"  and with LaunchDarkly's {ld_window:g} s windows")
        sandbox = ctx.sandbox(plan.rate_scale, rate=rate, rate_window_s=ld_window)
        try:
            ld_runs = ctx.repeat_runs(
                "rate-ld",
                f"ours, {ld_window:g} s windows",
                lambda: ctx.runner.etl_sync(sandbox, WHOLE_BUDGET),
                sandbox=sandbox,
            )
        finally:
            sandbox.stop()
    ctx.record("rate-limited/ours", our_runs)
    ctx.record("rate-limited/dlt", dlt_runs)
    ctx.record("rate-limited/ours-ld-window", ld_runs)
    pages = _median([r.pages for r in our_runs])
    every = our_runs + ld_runs
    ctx.figures += [
        Figure(
            "rate-limited",
            setting,
            "wall ÷ bound",
            [r.wall_s / (r.pages / rate) for r in our_runs if r.pages],
            "×",
            bound=f"pages ÷ rate = {pages:.0f} ÷ {rate:g} = {pages / rate:.1f} s",
            goal="≤ 1.05",
            check=lambda m: m <= 1.05,
            digits=3,
            note=_failed(our_runs)
            or f"wall {_median([r.wall_s for r in our_runs]):.1f} s incl. process start-up",
        ),
        Figure(
            "rate-limited",
            f"{setting}" + (f" and {ld_window:g} s windows" if ld_runs else ""),
            "429s received",
            [float(r.served_429) for r in every],
            goal="0",
            check=lambda m: m == 0,
            digits=0,
            note=f"max {max((r.served_429 for r in every), default=0)} (sandbox count); "
            f"ETL ledger: {max((r.rate_limited for r in every), default=0)}",
        ),
    ]
    if ld_runs:
        ld_pages = _median([r.pages for r in ld_runs])
        limit = max(1, int(rate * ld_window))
        floor = (-(-int(ld_pages) // limit) - 1) * ld_window
        ctx.figures.append(
            Figure(
                "rate-limited",
                f"{plan.rate_scale} · {rate:g} req/s in {ld_window:g} s windows (LaunchDarkly's)",
                "wall ÷ (pages ÷ rate)",
                [r.wall_s / (r.pages / rate) for r in ld_runs if r.pages],
                "×",
                bound=f"not a bound: {limit} requests may go at once; earliest finish "
                f"(⌈{ld_pages:.0f}/{limit}⌉−1) × {ld_window:g} s = {floor:.0f} s",
                note=_failed(ld_runs) or "informational",
            )
        )
    ctx.figures += [
        Figure(
            "peer (rate-limited)",
            f"dlt rest_api · {setting}",
            "our wall ÷ dlt wall",
            _pairwise(our_runs, dlt_runs),
            "×",
            bound="—",
            goal="< 1",
            check=lambda m: m < 1,
            note=_failed(dlt_runs)
            or f"dlt (n={len(dlt_runs)}) {_median([r.wall_s for r in dlt_runs]):.1f} s for "
            f"{_median([r.pages for r in dlt_runs]):.0f} pages (ours "
            f"{pages:.0f})",
        ),
        Figure(
            "peer (rate-limited)",
            f"dlt rest_api · {setting}",
            "429s dlt received",
            [float(r.served_429) for r in dlt_runs],
            digits=0,
            note="dlt retries a 429 after Retry-After; ours paces on X-Ratelimit-* headers",
        ),
    ]


def _pairwise(ours: list[RunResult], theirs: list[RunResult]) -> list[float]:
    """our wall ÷ their wall, run i against run i (the rest against the other's median)."""
    ours = [r for r in ours if r.ok]
    theirs = [r for r in theirs if r.ok]
    if not ours or not theirs:
        return []
    their_median = _median([r.wall_s for r in theirs])
    return [
        r.wall_s / (theirs[i].wall_s if i < len(theirs) else their_median)
        for i, r in enumerate(ours)
    ]


# --------------------------------------------------------------------------- latency-bound


def latency_bound(ctx: Context) -> None:
    plan = ctx.plan
    latency_s, in_flight = plan.latency_ms / 1000, plan.latency_in_flight
    setting = f"{plan.latency_scale} · {plan.latency_ms:g} ms/request · max_in_flight {in_flight}"
    ctx.log(f"[bold]latency-bound[/]: {setting}")
    sandbox = ctx.sandbox(plan.latency_scale, latency_ms=plan.latency_ms)
    config = EtlConfig(requests_per_second=1000.0, max_in_flight=in_flight)
    try:
        runs = ctx.repeat_runs("latency", "ours", lambda: ctx.runner.etl_sync(sandbox, config))
    finally:
        sandbox.stop()
    ctx.record("latency-bound/ours", runs)
    pages = _median([r.pages for r in runs])
    bound = pages * latency_s / in_flight
    ctx.figures.append(
        Figure(
            "latency-bound",
            setting,
            "wall ÷ bound",
            [r.wall_s / (r.pages * latency_s / in_flight) for r in runs if r.pages],
            "×",
            bound=f"pages × latency ÷ concurrency = {pages:.0f} × {latency_s:g} s ÷ {in_flight}"
            f" = {bound:.1f} s",
            goal="≤ 1.2",
            check=lambda m: m <= 1.2,
            digits=3,
            note=_failed(runs)
            or f"wall {_median([r.wall_s for r in runs]):.1f} s incl. process start-up",
        )
    )


# --------------------------------------------------------------------------- CPU-bound


def cpu_bound(ctx: Context) -> None:
    plan = ctx.plan
    setting = f"{plan.cpu_scale} · no latency, no limit · max_in_flight 8"
    ctx.log(f"[bold]CPU-bound[/]: {setting}")
    sandbox = ctx.sandbox(plan.cpu_scale)
    try:
        truth = sandbox.counts()
        ctx.warm(sandbox)
        runs = ctx.repeat_runs("cpu", "ours", lambda: ctx.runner.etl_sync(sandbox, UNTHROTTLED))
        ctx.log("  capturing deployment pages for the normalize/load figures")
        started = time.perf_counter()
        pages = capture_deployment_pages(sandbox.url, ctx.token)
        ctx.log(f"  captured {len(pages)} pages in {time.perf_counter() - started:.1f}s")
    finally:
        sandbox.stop()
    ctx.record("cpu-bound/ours", runs)
    ctx.rss.setdefault(plan.cpu_scale, []).extend(r.peak_rss_mb for r in runs if r.ok)

    def stages(index: int) -> Any:
        db = ctx.workdir / f"stages-{index}.duckdb"
        result = time_stages(pages, db)
        ctx.log(
            f"  stages #{index + 1}: normalize {result.records} records in "
            f"{result.normalize_s:.2f}s, load {result.rows} rows in {result.load_s:.2f}s "
            f"({result.batches} batches)"
        )
        db.unlink(missing_ok=True)
        return result

    stage_runs = ctx.repeat("stages", stages)
    pages.clear()  # release the captured bytes before the next scenario
    ctx.runs["cpu-bound/stages"] = [vars(s) for s in stage_runs]
    deployments = truth.get("deployments", 0)
    ctx.figures += [
        Figure(
            "CPU-bound",
            setting,
            "records/s end to end",
            [r.records / r.wall_s for r in runs if r.ok],
            " rec/s",
            bound="the machine",
            digits=0,
            note=_failed(runs)
            or f"{_median([r.records for r in runs]):,.0f} records ({deployments:,} deployments)"
            f" in {_median([r.wall_s for r in runs]):.1f} s; "
            f"{_median([r.cpu_s for r in runs]):.1f} s CPU",
        ),
        Figure(
            "CPU-bound",
            f"{plan.cpu_scale} · deployments, batches of {SyncSettings().batch_records}",
            "normalize records/s",
            [s.normalize_records_per_s for s in stage_runs],
            " rec/s",
            bound="in-process",
            digits=0,
        ),
        Figure(
            "CPU-bound",
            f"{plan.cpu_scale} · deployments, batches of {SyncSettings().batch_records}",
            "load rows/s (merge_batch)",
            [s.load_rows_per_s for s in stage_runs],
            " rows/s",
            bound="in-process, DuckDB",
            digits=0,
            note=f"{stage_runs[0].rows:,} rows in 4 tables" if stage_runs else "",
        ),
    ]


# --------------------------------------------------------------------------- peer (CPU-bound)


def peer(ctx: Context) -> None:
    plan = ctx.plan
    scale = plan.peer_scale
    setting = f"{scale} · no latency, no limit"
    ctx.log(f"[bold]peer (CPU-bound)[/]: ours vs dlt rest_api at {scale}, interleaved")
    sandbox = ctx.sandbox(scale)
    try:
        ctx.warm(sandbox)

        def pair(index: int) -> tuple[RunResult, RunResult]:
            mine = ctx.runner.etl_sync(sandbox, UNTHROTTLED)
            ctx.describe(f"ours #{index + 1}", mine)
            theirs = ctx.runner.dlt_peer(sandbox)
            ctx.describe(f"dlt  #{index + 1}", theirs)
            return mine, theirs

        pairs = ctx.repeat("peer", pair)
    finally:
        sandbox.stop()
    ours = [p[0] for p in pairs]
    dlt = [p[1] for p in pairs]
    ctx.record("peer/ours", ours)
    ctx.record("peer/dlt", dlt)
    ctx.rss.setdefault(scale, []).extend(r.peak_rss_mb for r in ours if r.ok)
    equal = "" if scale == plan.cpu_scale else f" (dlt at {plan.cpu_scale} is too slow to repeat)"
    ctx.figures += [
        Figure(
            "peer (CPU-bound)",
            f"dlt rest_api · {setting}",
            "our wall ÷ dlt wall",
            _pairwise(ours, dlt),
            "×",
            bound=f"both at {scale}{equal}",
            goal="≤ 0.10 (≥ 10× faster)",
            check=lambda m: m <= 0.10,
            note=_failed(ours + dlt)
            or f"ours {_median([r.wall_s for r in ours]):.1f} s / "
            f"{_median([r.peak_rss_mb for r in ours]):.0f} MB, dlt "
            f"{_median([r.wall_s for r in dlt]):.1f} s / "
            f"{_median([r.peak_rss_mb for r in dlt]):.0f} MB",
        ),
        Figure(
            "peer (CPU-bound)",
            f"{setting}",
            "records/s: ours | dlt",
            [r.records / r.wall_s for r in ours if r.ok],
            " rec/s",
            digits=0,
            note="dlt: "
            + ", ".join(f"{r.records / r.wall_s:,.0f}" for r in dlt if r.ok and r.wall_s)
            + " rec/s",
        ),
    ]


# --------------------------------------------------------------------------- incremental


def incremental(ctx: Context) -> None:
    plan = ctx.plan
    scale = plan.incremental_scale
    setting = f"{scale} · one POST /_sandbox/advance between runs"
    ctx.log(f"[bold]incremental[/]: {setting}")
    sandbox = ctx.sandbox(scale)
    try:

        def rounds(index: int) -> tuple[RunResult, RunResult, dict[str, int]]:
            db = ctx.runner.fresh_db("incremental")
            first = ctx.runner.etl_sync(sandbox, UNTHROTTLED, db)
            ctx.describe(f"first  #{index + 1}", first)
            change = sandbox.advance()
            second = ctx.runner.etl_sync(sandbox, UNTHROTTLED, db)
            ctx.describe(f"second #{index + 1}", second)
            return first, second, change

        results = ctx.repeat("incremental", rounds)
    finally:
        sandbox.stop()
    firsts = [r[0] for r in results]
    seconds = [r[1] for r in results]
    ctx.record("incremental/first", firsts)
    ctx.record("incremental/second", seconds)
    ctx.runs["incremental/changes"] = [r[2] for r in results]
    failed = _failed(firsts + seconds)
    ctx.figures += [
        Figure(
            "incremental",
            setting,
            "2nd run requests ÷ 1st",
            [s.pages / f.pages for f, s in zip(firsts, seconds, strict=True) if f.pages],
            "×",
            bound="the change",
            note=failed
            or f"{_median([s.pages for s in seconds]):.0f} vs "
            f"{_median([f.pages for f in firsts]):.0f} requests; 2nd run loaded "
            f"{_median([s.records for s in seconds]):,.0f} records",
        ),
        Figure(
            "incremental",
            setting,
            "2nd run wall ÷ 1st",
            [s.wall_s / f.wall_s for f, s in zip(firsts, seconds, strict=True)],
            "×",
            bound="the change",
            note=failed
            or f"{_median([s.wall_s for s in seconds]):.2f} s vs "
            f"{_median([f.wall_s for f in firsts]):.2f} s",
        ),
    ]


# --------------------------------------------------------------------------- memory


def memory(ctx: Context, scales: tuple[str, ...] = ("small", "medium", "large")) -> None:
    """Peak RSS by scale; reuses the unthrottled runs of other scenarios when they ran."""
    for scale in scales:
        if ctx.rss.get(scale):
            continue
        ctx.log(f"[bold]memory[/]: {scale}")
        sandbox = ctx.sandbox(scale)
        try:
            runs = ctx.repeat_runs(
                "memory", scale, partial(ctx.runner.etl_sync, sandbox, UNTHROTTLED)
            )
        finally:
            sandbox.stop()
        ctx.record(f"memory/{scale}", runs)
        ctx.rss[scale] = [r.peak_rss_mb for r in runs if r.ok]
    for scale in scales:
        ctx.figures.append(
            Figure(
                "memory",
                f"{scale} · unthrottled sync",
                "peak RSS",
                ctx.rss.get(scale, []),
                " MB",
                digits=0,
            )
        )
    history(ctx)
    small, large = ctx.rss.get("small"), ctx.rss.get("large")
    if small and large:
        ctx.figures.append(
            Figure(
                "memory",
                "large ÷ small",
                "peak RSS ratio",
                [_median(large) / _median(small)],
                "×",
                goal="≤ 1.5 (flat)",
                check=lambda m: m <= 1.5,
                note="ratio of medians",
            )
        )


def history(ctx: Context, scale: str = "large", rereads: int = 2) -> None:
    """Memory against history: re-read everything into the warehouse the first run filled.

    Each re-read (`--since` the backfill start) upserts every record again into a file that
    already holds them all, so a process whose memory grew with the warehouse would peak
    higher each time; extraction and batch sizes are the same as the first run's.
    """
    ctx.log(f"[bold]memory against history[/]: {scale}, then {rereads} full re-reads")
    config = UNTHROTTLED
    since = (datetime.now(UTC) - timedelta(days=config.backfill_days)).strftime("%Y-%m-%d")
    db = ctx.workdir / "history.duckdb"
    db.unlink(missing_ok=True)
    sandbox = ctx.sandbox(scale)
    try:
        runs = [ctx.runner.etl_sync(sandbox, config, db)]
        ctx.describe("first", runs[0])
        for index in range(rereads):
            runs.append(ctx.runner.etl_sync(sandbox, config, db, ("--since", since)))
            ctx.describe(f"re-read #{index + 1}", runs[-1])
    finally:
        sandbox.stop()
    ctx.record("memory/history", runs)
    first, later = runs[0], [r for r in runs[1:] if r.ok]
    ctx.figures.append(
        Figure(
            "memory",
            f"{scale} · {rereads} full re-reads into the same warehouse",
            "peak RSS, re-read ÷ first run",
            [r.peak_rss_mb / first.peak_rss_mb for r in later] if first.ok else [],
            "×",
            note=_failed(runs)
            or f"first {first.peak_rss_mb:.0f} MB; re-reads "
            + ", ".join(f"{r.peak_rss_mb:.0f}" for r in later)
            + " MB (each upserts every record again)",
        )
    )
