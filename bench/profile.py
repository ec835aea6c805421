"""The `profile` scenario: one CPU-bound `etl sync` under cProfile (all threads)."""

from __future__ import annotations

import io
import os
import pstats
import sys
from typing import TYPE_CHECKING

from bench.procs import measure
from bench.report import Figure
from bench.runners import EtlConfig

if TYPE_CHECKING:
    from bench.scenarios import Context

TOP = 15


def top_entries(path: str, sort: str, limit: int = TOP) -> str:
    buffer = io.StringIO()
    stats = pstats.Stats(path, stream=buffer)
    stats.strip_dirs().sort_stats(sort).print_stats(limit)
    text = buffer.getvalue()
    # Keep the table, drop pstats' preamble up to the column header.
    start = text.find("   ncalls")
    return text[start:] if start >= 0 else text


def profile_scenario(ctx: Context) -> None:
    scale = ctx.plan.cpu_scale
    ctx.log(f"[bold]profile[/]: one CPU-bound etl sync at {scale} under cProfile (all threads)")
    sandbox = ctx.sandbox(scale)
    prof = ctx.workdir / f"sync-{scale}.prof"
    config = ctx.workdir / "profile.toml"
    config.write_text(EtlConfig(requests_per_second=1000.0, max_in_flight=8).toml())
    db = ctx.workdir / "profile.duckdb"
    cmd = [
        sys.executable, "-m", "bench.profile_sync", str(prof),
        "sync", "--config", str(config), "--db", str(db), "--base-url", sandbox.url, "-q",
    ]  # fmt: skip
    try:
        measured = measure(
            cmd, env={**os.environ, "LD_API_TOKEN": ctx.token}, logdir=ctx.workdir, name="profile"
        )
    finally:
        sandbox.stop()
    if measured.returncode != 0 or not prof.exists():
        raise RuntimeError(f"profiled sync failed: {measured.tail()}")
    cumulative = top_entries(str(prof), "cumulative")
    own = top_entries(str(prof), "tottime")
    ctx.console.print(f"[bold]top {TOP} by cumulative time[/] (all threads merged)")
    ctx.console.print(cumulative, markup=False, highlight=False)
    ctx.console.print(f"[bold]top {TOP} by own time[/]")
    ctx.console.print(own, markup=False, highlight=False)
    ctx.runs["profile"] = {
        "scale": scale,
        "wall_s": measured.wall_s,
        "prof": str(prof),
        "top_cumulative": cumulative,
        "top_tottime": own,
    }
    ctx.figures.append(
        Figure(
            "profile",
            f"{scale} · unthrottled, cProfile on",
            "wall under the profiler",
            [measured.wall_s],
            " s",
            note="top entries printed above and stored in the JSON",
        )
    )
