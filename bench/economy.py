"""Request economy (issue 12): requests against the floor the sandbox's truth allows.

The floor of a full sync is what any client must spend at 100 items a page: every listing
costs max(1, ⌈items ÷ 100⌉) — the projects, each project's environments, pipelines, policies
and flags, each pipeline's releases, and each (project, environment)'s deployments, flag
statuses and flag events. It is
computed from the sandbox's own counts (`/_sandbox/truth/counts`), not from what the client did.

Scenarios (`--only floor,budget,hourly,resume`; `--code PATH` runs `etl` from another
checkout, for before/after):
- floor: a sparse full history (`--since` ten years before the first deployment, medium) and
  a dense one (large); requests ÷ floor.
- budget: large against a sandbox enforcing 20 req/s in LaunchDarkly's 10 s windows;
  wall ÷ (floor ÷ (budget_share × rate)), and 429s.
- hourly: medium anchored an hour back, a full sync, `advance` to now (new, finished and
  archived deployments), a second sync; its requests ÷ (floor of the change + 1 per
  partition + one re-verification page per partition).
- resume: medium with 10 ms latency and batches of 1,000 records, SIGKILL after 60
  deployment pages, then a full run;
  deployment requests of both ÷ (deployments floor + pages in flight at the kill + the second
  run's tail, 1 per partition).
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import duckdb

from bench.procs import Sandbox
from bench.report import Figure
from bench.runners import EtlConfig, RunResult
from bench.scenarios import UNTHROTTLED, Context, _failed

PAGE = 100
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class Floor:
    """The fewest requests that read a sandbox's truth, split by what they read."""

    deployments: int
    listings: int
    partitions: int
    per_partition: dict[str, int]
    flag_events: int = 0
    pull_requests: int = 0

    @property
    def total(self) -> int:
        return self.deployments + self.flag_events + self.pull_requests + self.listings

    @property
    def deployment_partitions(self) -> int:
        return sum(1 for key in self.per_partition if key.startswith("deployments/"))


def pages(items: int) -> int:
    """What one listing of `items` costs: max(1, ⌈items ÷ page⌉)."""
    return max(1, math.ceil(items / PAGE))


def floor_of(counts: dict[str, int]) -> Floor:
    """The floor from `/_sandbox/truth/counts` (per-pair and per-pipeline keys).

    Flag events are read like deployments, one chain per (project, environment); flags are a
    listing per project and flag statuses one unpaged answer per (project, environment).
    A sandbox without flags (an older one) has none of their keys and costs nothing for them.
    Insights pull requests are read like deployments, one chain per project; applications,
    teams and Insights groups (20 a page) are account listings, scores one answer per pair.
    """
    deployments = {k: v for k, v in counts.items() if k.startswith("deployments/")}
    flag_events = {k: v for k, v in counts.items() if k.startswith("flag_events/")}
    pull_requests = {k: v for k, v in counts.items() if k.startswith("insight_pull_requests/")}
    progressions = {k: v for k, v in counts.items() if k.startswith("release_progressions/")}
    projects = {key.split("/")[1] for key in deployments}
    environments = {p: sum(1 for k in deployments if k.split("/")[1] == p) for p in projects}
    pipelines = {p: sum(1 for k in progressions if k.split("/")[1] == p) for p in projects}
    listings = (
        pages(counts["projects"])
        + sum(pages(n) for n in environments.values())
        + sum(pages(n) for n in pipelines.values())
        + sum(pages(n) for n in progressions.values())
        + len(projects)  # release policies: one unpaged answer per project
        + sum(pages(n) for k, n in counts.items() if k.startswith("flags/"))
        + sum(1 for k in counts if k.startswith("flag_statuses/"))  # unpaged, per pair
        + _teams_listings(counts, len(deployments))
    )
    return Floor(
        deployments=sum(pages(n) for n in deployments.values()),
        listings=listings,
        partitions=len(deployments) + len(flag_events) + len(pull_requests),
        per_partition=deployments | flag_events | pull_requests,
        flag_events=sum(pages(n) for n in flag_events.values()),
        pull_requests=sum(pages(n) for n in pull_requests.values()),
    )


def _teams_listings(counts: dict[str, int], pairs: int) -> int:
    """Applications, teams, Insights groups (20 a page), and one scores answer per pair;
    nothing for a sandbox without them."""
    if "applications" not in counts:
        return 0
    return (
        pages(counts["applications"])
        + pages(counts.get("teams", 0))
        + max(1, math.ceil(counts.get("insight_groups", 0) / 20))
        + pairs
    )


def _config(ctx: Context) -> EtlConfig:
    return replace(UNTHROTTLED, code=ctx.plan.code)


def _who(ctx: Context) -> str:
    return f" · etl from {ctx.plan.code}" if ctx.plan.code else ""


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


# --------------------------------------------------------------------------- floor


def floor(ctx: Context) -> None:
    """Full history, sparse (medium since ten years back) and dense (large): requests ÷ floor."""
    config = _config(ctx)
    for label, scale, extra in (
        ("sparse", "medium", ("--since", "2016-01-01")),
        ("dense", ctx.plan.cpu_scale, ()),
    ):
        setting = f"{scale} · full history, {label}" + (f" ({' '.join(extra)})" if extra else "")
        ctx.log(f"[bold]floor[/]: {setting}{_who(ctx)}")
        sandbox = ctx.sandbox(scale)
        try:
            truth = floor_of(sandbox.counts())
            runs = ctx.repeat_runs(
                f"floor-{label}",
                label,
                partial(ctx.runner.etl_sync, sandbox, config, None, extra),
            )
        finally:
            sandbox.stop()
        ctx.record(f"floor/{label}", runs)
        ctx.figures.append(
            Figure(
                "request economy",
                setting + _who(ctx),
                "requests ÷ floor",
                [r.served.get("total", 0) / truth.total for r in runs if r.ok],
                "×",
                bound=f"floor {truth.total} = {truth.deployments} deployments + "
                f"{truth.flag_events} flag events + {truth.pull_requests} pull requests + "
                f"{truth.listings} listings",
                goal="≤ 1.05",
                check=lambda m: m <= 1.05,
                digits=3,
                note=_failed(runs)
                or f"{_median([r.served.get('total', 0) for r in runs]):.0f} requests "
                f"({_median([r.served.get('deploymentPages', 0) for r in runs]):.0f} of "
                f"deployments), {_median([r.wall_s for r in runs]):.1f} s",
            )
        )


# --------------------------------------------------------------------------- budget


def budget(ctx: Context) -> None:
    """20 req/s enforced by the sandbox in LaunchDarkly's 10 s windows: wall against the floor.

    At the large scale, so the run spans several windows (medium's floor fits in one). By
    default a run spends `budget_share` (0.8) of each window, so the pace it may keep is
    0.8 × rate: the goal is against floor ÷ (0.8 × rate); wall ÷ (floor ÷ rate) is shown too.
    """
    plan = ctx.plan
    rate, window, share = plan.rate, plan.ld_rate_window_s, 0.8
    scale = plan.cpu_scale
    setting = f"{scale} · {rate:g} req/s in {window:g} s windows · budget_share {share:g}"
    ctx.log(f"[bold]budget[/]: {setting}{_who(ctx)}")
    sandbox = ctx.sandbox(scale, rate=rate, rate_window_s=window)
    config = _config(ctx)
    try:
        truth = floor_of(sandbox.counts())
        runs = ctx.repeat_runs(
            "budget", "ours", lambda: ctx.runner.etl_sync(sandbox, config), sandbox=sandbox
        )
    finally:
        sandbox.stop()
    ctx.record("budget/ours", runs)
    ours, server = truth.total / (share * rate), truth.total / rate
    ctx.figures += [
        Figure(
            "request economy",
            setting + _who(ctx),
            "wall ÷ (floor ÷ (share × rate))",
            [r.wall_s / ours for r in runs if r.ok],
            "×",
            bound=f"{truth.total} ÷ ({share:g} × {rate:g}) = {ours:.1f} s",
            goal="≤ 1.05",
            check=lambda m: m <= 1.05,
            digits=3,
            note=_failed(runs)
            or f"{_median([r.served.get('total', 0) for r in runs]):.0f} requests in "
            f"{_median([r.wall_s for r in runs]):.1f} s incl. start-up; wall ÷ (floor ÷ rate) "
            + ", ".join(f"{r.wall_s / server:.3f}" for r in runs if r.ok),
        ),
        Figure(
            "request economy",
            setting + _who(ctx),
            "429s received",
            [float(r.served_429) for r in runs],
            goal="0",
            check=lambda m: m == 0,
            digits=0,
        ),
    ]


# --------------------------------------------------------------------------- hourly


def hourly(ctx: Context) -> None:
    """An hourly incremental run: data anchored an hour back, a sync, `advance` to now, a sync."""
    scale = ctx.plan.incremental_scale
    setting = f"{scale} · a sync, advance one hour (new, finished, archived), a sync"
    ctx.log(f"[bold]hourly[/]: {setting}{_who(ctx)}")
    config = _config(ctx)
    results: list[tuple[RunResult, RunResult, dict[str, int], float]] = []

    def once(index: int) -> None:
        anchor = int(time.time() // 60 * 60_000) - HOUR_MS
        sandbox = Sandbox(scale=scale, token=ctx.token, logdir=ctx.workdir, now_ms=anchor)
        sandbox.start()
        try:
            db = ctx.runner.fresh_db("hourly")
            first = ctx.runner.etl_sync(sandbox, config, db)
            ctx.describe(f"first  #{index + 1}", first)
            before = floor_of(sandbox.counts())
            change = sandbox.advance(int(time.time() * 1000))
            after = floor_of(sandbox.counts())
            second = ctx.runner.etl_sync(sandbox, config, db)
            ctx.describe(f"second #{index + 1}", second)
        finally:
            sandbox.stop()
        new = {key: n - before.per_partition.get(key, 0) for key, n in after.per_partition.items()}
        change_floor = after.listings + sum(math.ceil(n / PAGE) for n in new.values() if n > 0)
        bound = change_floor + 2 * after.partitions  # + the tail's page and a sweep page each
        results.append((first, second, change, bound))

    ctx.repeat("hourly", once)
    firsts, seconds = [r[0] for r in results], [r[1] for r in results]
    ctx.record("hourly/first", firsts)
    ctx.record("hourly/second", seconds)
    ctx.runs["hourly/changes"] = [r[2] for r in results]
    bound = results[0][3] if results else 0
    ctx.figures += [
        Figure(
            "request economy",
            setting + _who(ctx),
            "2nd run requests ÷ bound",
            [s.served.get("total", 0) / b for _, s, _, b in results if s.ok],
            "×",
            bound=f"floor of the change + 1 per partition + re-verification page = {bound:.0f}",
            goal="≤ 1",
            check=lambda m: m <= 1,
            digits=3,
            note=_failed(firsts + seconds)
            or f"{_median([s.served.get('total', 0) for s in seconds]):.0f} requests "
            f"({_median([s.served.get('deploymentPages', 0) for s in seconds]):.0f} of "
            f"deployments) vs {_median([f.served.get('total', 0) for f in firsts]):.0f} for "
            "the full sync; == truth is proven by tests/integration/test_request_economy.py",
        ),
    ]


# --------------------------------------------------------------------------- resume


def resume(ctx: Context, after_pages: int = 60) -> None:
    """SIGKILL after `after_pages` deployment pages, then a full run: what the kill cost."""
    scale = ctx.plan.incremental_scale
    setting = f"{scale} · 10 ms latency · SIGKILL after {after_pages} deployment pages, resume"
    ctx.log(f"[bold]resume[/]: {setting}{_who(ctx)}")
    # Batches of 1,000 records, so that the killed run has committed some pages.
    config = replace(_config(ctx), batch_records=1000)
    sandbox = ctx.sandbox(scale, latency_ms=10)
    rows: list[tuple[int, int, int, int, int]] = []
    try:
        truth = floor_of(sandbox.counts())

        def once(index: int) -> None:
            db = ctx.runner.fresh_db("resume")
            killed = ctx.runner.etl_sync_killed(sandbox, config, db, after_pages)
            committed = _committed_pages(db)
            second = ctx.runner.etl_sync(sandbox, config, db)
            ctx.describe(f"resumed #{index + 1}", second)
            first_pages = killed.get("deploymentPages", 0)
            in_flight = max(0, first_pages - committed)
            both = first_pages + second.served.get("deploymentPages", 0)
            rows.append((both, in_flight, first_pages, committed, killed.get("killed", 0)))
            ctx.log(
                f"  killed run: {first_pages} deployment pages, {committed} committed, "
                f"{in_flight} in flight; both runs {both} deployment pages"
            )

        ctx.repeat("resume", once)
    finally:
        sandbox.stop()
    ctx.runs["resume"] = [
        dict(zip(("both", "in_flight", "first", "committed", "killed"), row, strict=True))
        for row in rows
    ]
    ctx.figures.append(
        Figure(
            "request economy",
            setting + _who(ctx),
            "both runs' deployment requests ÷ bound",
            [
                both / (truth.deployments + flight + truth.deployment_partitions)
                for both, flight, *_ in rows
            ],
            "×",
            bound=f"deployments floor {truth.deployments} + pages in flight at the kill + "
            f"{truth.deployment_partitions} (the 2nd run's tail)",
            goal="≤ 1",
            check=lambda m: m <= 1,
            digits=3,
            note="; ".join(
                f"{both} pages, {flight} in flight ({first} fetched, {committed} committed)"
                for both, flight, first, committed, _ in rows
            )
            if all(row[4] for row in rows)
            else "a run ended before the kill",
        )
    )


def _committed_pages(db: Path) -> int:
    """Deployment pages the killed run committed: ⌈committed ÷ page⌉ per partition."""
    with duckdb.connect(str(db), read_only=True) as conn:
        counts = conn.execute(
            "SELECT count(*) FROM deployments GROUP BY project_key, environment_key"
        ).fetchall()
    return sum(math.ceil(n / PAGE) for (n,) in counts)
