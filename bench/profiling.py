"""The `profile` scenario: one CPU-bound `etl sync` under cProfile (all threads).

Note that cProfile counts every resumption of a coroutine as a call, so `ncalls` of async
functions (e.g. `get_page`) is higher than the number of requests.
"""

from __future__ import annotations

import io
import os
import pstats
import sys
import sysconfig
from pathlib import Path
from typing import TYPE_CHECKING

from bench.procs import REPO, measure
from bench.report import Figure
from bench.runners import EtlConfig

if TYPE_CHECKING:
    from bench.scenarios import Context

TOP = 15


def top_entries(path: str, sort: str, limit: int = TOP, restriction: str = "") -> str:
    """pstats' table of the top `limit` entries, paths shortened."""
    buffer = io.StringIO()
    stats = pstats.Stats(path, stream=buffer)
    stats.sort_stats(sort)
    if restriction:
        stats.print_stats(restriction, limit)
    else:
        stats.print_stats(limit)
    text = buffer.getvalue()
    start = text.find("   ncalls")  # drop pstats' preamble up to the column header
    text = text[start:] if start >= 0 else text
    paths = sysconfig.get_paths()
    for prefix in (paths["purelib"], paths["stdlib"], str(REPO)):
        text = text.replace(str(Path(prefix)) + "/", "")
    return text.rstrip() + "\n"


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
    ours = top_entries(str(prof), "cumulative", restriction=r"/etl/(?!sandbox)")
    own = top_entries(str(prof), "tottime")
    for title, text in (
        ("by cumulative time (all threads merged)", cumulative),
        ("by cumulative time, etl/ functions only", ours),
        ("by own time", own),
    ):
        ctx.console.print(f"[bold]top {TOP} {title}[/]")
        ctx.console.print(text, markup=False, highlight=False, soft_wrap=True)
    ctx.runs["profile"] = {
        "scale": scale,
        "wall_s": measured.wall_s,
        "prof": str(prof),
        "top_cumulative": cumulative,
        "top_cumulative_etl": ours,
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
