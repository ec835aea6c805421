"""`python -m bench.compare [--scale large] [--runs 3] CONFIG ...`: settings side by side.

Each CONFIG is `NAME` or `NAME=section.key=value[,section.key=value...]`, applied on top of
the project's defaults (and the benchmark's unthrottled limits); an `@PATH` among the
settings runs `etl` from another checkout (`git worktree add /tmp/before HEAD~1`), to compare
builds. The runs are interleaved against one sandbox — run 1 of every config, then run 2 of
every config, … — so that the machine's drift hits every config alike; the figures of one
config alone, run after another's, differ by more than most settings change them. Prints
the median wall time, CPU time (user + system) and peak RSS of each config, with their
spread.

    python -m bench.compare default lean=warehouse.memory_limit=64MB \\
        duckdb-rows=warehouse.row_group_size=122880,warehouse.checkpoint_threshold=128MB
    python -m bench.compare --runs 7 before=@/tmp/before after
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
from pathlib import Path

from bench.procs import Sandbox
from bench.runners import EtlConfig, Runner, RunResult
from etl.sandbox.config import SCALES


def parse_config(text: str) -> tuple[str, EtlConfig]:
    """`lean=warehouse.memory_limit=64MB,sync.batch_bytes=4000000` → its name and settings."""
    name, _, settings = text.partition("=")
    overrides: list[tuple[str, str]] = []
    code: Path | None = None
    for setting in filter(None, settings.split(",")):
        if setting.startswith("@"):
            code = Path(setting[1:]).resolve()
            if not (code / "etl" / "__init__.py").is_file():
                raise argparse.ArgumentTypeError(f"{setting!r}: not a checkout of this project")
            continue
        key, equals, value = setting.partition("=")
        if not equals or "." not in key:
            raise argparse.ArgumentTypeError(f"{setting!r}: expected section.key=value")
        overrides.append((key, value))
    return name, EtlConfig(overrides=tuple(overrides), code=code)


def spread(values: list[float], unit: str, digits: int) -> str:
    """`median [min–max] unit`."""
    return (
        f"{statistics.median(values):.{digits}f} "
        f"[{min(values):.{digits}f}–{max(values):.{digits}f}] {unit}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__)
    parser.add_argument("configs", nargs="+", type=parse_config, metavar="CONFIG")
    parser.add_argument("--scale", default="large", choices=sorted(SCALES))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="The sandbox's latency.")
    parser.add_argument("--rate", type=float, default=None, help="The sandbox's req/s limit.")
    parser.add_argument("--rate-window", type=float, default=10.0, help="Its window, seconds.")
    args = parser.parse_args(argv)
    configs: list[tuple[str, EtlConfig]] = args.configs
    results: dict[str, list[RunResult]] = {name: [] for name, _ in configs}
    token = f"api-{secrets.token_hex(8)}"
    with tempfile.TemporaryDirectory(prefix="ld-compare-") as work:
        runner = Runner(Path(work), token)
        with Sandbox(
            scale=args.scale,
            token=token,
            logdir=Path(work),
            latency_ms=args.latency_ms,
            rate=args.rate,
            rate_window_s=args.rate_window,
        ) as sandbox:
            for run in range(1, args.runs + 1):
                for name, config in configs:
                    if args.rate is not None:
                        sandbox.wait_for_window()
                    result = runner.etl_sync(sandbox, config)
                    if not result.ok:
                        print(f"{name} run {run} failed: {result.error}", file=sys.stderr)
                        return 1
                    results[name].append(result)
                    print(
                        f"{name} #{run}: {result.wall_s:.2f} s, CPU {result.cpu_s:.2f} s, "
                        f"{result.peak_rss_mb:.0f} MB, {result.served.get('total', 0)} requests",
                        file=sys.stderr,
                    )
    width = max(len(name) for name in results)
    for name, runs in results.items():
        wall = spread([r.wall_s for r in runs], "s", 2)
        cpu = spread([r.cpu_s for r in runs], "s", 2)
        peak = spread([r.peak_rss_mb for r in runs], "MB", 0)
        print(f"{name:<{width}}  wall {wall}  CPU {cpu}  peak {peak}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
