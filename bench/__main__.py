"""`python -m bench [--quick] [--only SCENARIO ...]`: run the benchmark, print one table.

Scenarios (in the order they run): rate, latency, peer, incremental, cpu, memory, the
request economy's floor, budget, hourly, resume (`bench/economy.py`), and lake
(`bench/lake.py`). `profile` runs only when asked for (`--only profile`): it profiles one
CPU-bound `etl sync`.
"""

from __future__ import annotations

import argparse
import importlib.util
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from bench import economy, scenarios
from bench.lake import ducklake_workers
from bench.profiling import profile_scenario
from bench.report import print_table, write_json
from bench.runners import Runner
from bench.scenarios import Context, Plan

SCENARIOS: dict[str, Callable[[Context], None]] = {
    "rate": scenarios.rate_limited,
    "latency": scenarios.latency_bound,
    "peer": scenarios.peer,
    "incremental": scenarios.incremental,
    "cpu": scenarios.cpu_bound,
    "memory": scenarios.memory,
    "floor": economy.floor,
    "budget": economy.budget,
    "hourly": economy.hourly,
    "resume": economy.resume,
    "lake": ducklake_workers,
    "profile": profile_scenario,
}
DEFAULT = (
    "rate", "latency", "peer", "incremental", "cpu", "memory",
    "floor", "budget", "hourly", "resume", "lake",
)  # fmt: skip
NEEDS_DLT = {"peer"}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="One run of each scenario.")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="SCENARIO",
        help=f"Run only these (repeat or comma-separate): {', '.join(SCENARIOS)}.",
    )
    parser.add_argument("--runs", type=int, default=None, help="Runs per figure (default 3).")
    parser.add_argument("--peer-scale", default=None, help="Scale of the CPU-bound dlt peer.")
    parser.add_argument("--cpu-scale", default=None, help="Scale of the CPU-bound scenario.")
    parser.add_argument(
        "--code",
        type=Path,
        default=None,
        help="Run `etl` from this checkout in the request-economy scenarios (before/after).",
    )
    parser.add_argument("--keep", action="store_true", help="Keep the work directory.")
    parser.add_argument("--no-json", action="store_true", help="Do not write bench/results/.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    console = Console(width=max(Console().width, 140))
    chosen = [name.strip() for value in args.only for name in value.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in SCENARIOS]
    if unknown:
        console.print(f"unknown scenario(s): {', '.join(unknown)}; one of {', '.join(SCENARIOS)}")
        return 2
    selected = [name for name in SCENARIOS if name in chosen] if chosen else list(DEFAULT)
    plan = Plan()
    if args.quick:
        plan.runs = 1
    if args.runs:
        plan.runs = args.runs
    if args.peer_scale:
        plan.peer_scale = args.peer_scale
    if args.cpu_scale:
        plan.cpu_scale = args.cpu_scale
    if args.code:
        plan.code = args.code.resolve()
    has_dlt = importlib.util.find_spec("dlt") is not None
    started = datetime.now(UTC)
    clock = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="ld-bench-"))
    token = f"bench-{secrets.token_hex(8)}"
    ctx = Context(
        runner=Runner(workdir, token),
        token=token,
        workdir=workdir,
        now_ms=int(time.time() // 60 * 60_000),
        plan=plan,
        console=console,
    )
    console.print(
        f"[bold]ld-insights-etl benchmark[/] · {', '.join(selected)} · up to {plan.runs} run(s) "
        f"each · work dir {workdir}"
    )
    timings: dict[str, float] = {}
    failures: dict[str, str] = {}
    try:
        for name in selected:
            if name in NEEDS_DLT and not has_dlt:
                failures[name] = "dlt is not installed (uv sync --group bench)"
                console.print(f"[yellow]skipping {name}: {failures[name]}[/]")
                continue
            if name == "rate" and not has_dlt:
                console.print("[yellow]dlt not installed: the rate-limited peer will fail[/]")
            begun = time.perf_counter()
            try:
                SCENARIOS[name](ctx)
            except Exception as exc:  # a broken scenario must not hide the others
                failures[name] = f"{type(exc).__name__}: {exc}"
                console.print(f"[red]{name} failed: {failures[name]}[/]")
            timings[name] = round(time.perf_counter() - begun, 1)
            console.print(f"[dim]{name}: {timings[name]:.0f}s[/]")
    finally:
        total = time.perf_counter() - clock
        if ctx.figures:
            print_table(
                ctx.figures,
                console,
                f"ld-insights-etl benchmark — {started:%Y-%m-%d %H:%M} UTC, {total:.0f} s total",
            )
        console.print(
            "seconds per scenario: " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items())
        )
        if not args.no_json and ctx.figures:
            path = write_json(
                ctx.figures,
                ctx.runs,
                {
                    "plan": vars(plan),
                    "scenario_seconds": timings,
                    "total_seconds": round(total, 1),
                    "failures": failures,
                },
                started,
            )
            shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
            console.print(f"results: {shown}")
        if args.keep:
            console.print(f"work dir kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
