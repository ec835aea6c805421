"""What one publish costs at a scale: `python -m bench.publish_cost [SCALE] [DIR]`.

Syncs the sandbox at SCALE (default large) into DIR/warehouse.duckdb once, then times
publishes of that working copy (checkpoint, copy beside the published file, fsync, rename)
and prints the file's size, how it was copied and the time of each publish.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from etl.config import load_settings
from etl.sandbox import SandboxConfig, running_sandbox
from etl.sync import sync
from etl.warehouse import open_warehouse
from etl.warehouse.duckdb_file import DuckDBFile
from etl.warehouse.files import clone_file

REPEATS = 5


async def build(db: Path, scale: str) -> float:
    config = SandboxConfig(scale=scale)  # type: ignore[arg-type]
    async with running_sandbox(config) as sandbox:
        settings = load_settings(
            None,
            {"api.base_url": sandbox.url, "warehouse.path": str(db),
             "limits.requests_per_second": 5000.0},
            {**os.environ, "LD_API_TOKEN": config.token},
        )  # fmt: skip
        started = time.perf_counter()
        report = await sync(settings)
        assert report.status == "succeeded", report.error
        return time.perf_counter() - started


def main() -> None:
    scale = sys.argv[1] if len(sys.argv) > 1 else "large"
    root = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.mkdtemp())
    db = root / "warehouse.duckdb"
    took = asyncio.run(build(db, scale))
    files = DuckDBFile(db)
    size = files.working.stat().st_size
    print(f"{scale}: sync {took:.1f}s, working copy {size / 1e6:.1f} MB, published "
          f"{db.stat().st_size / 1e6:.1f} MB")  # fmt: skip
    how = clone_file(files.working, root / "probe")
    (root / "probe").unlink()
    times = []
    for _ in range(REPEATS):
        writer = open_warehouse(db).writer()
        try:
            started = time.perf_counter()
            writer.publish()
            times.append(time.perf_counter() - started)
        finally:
            writer.close()
    print(f"publish ({how} copy): " + ", ".join(f"{t:.3f}s" for t in times)
          + f"; median {sorted(times)[len(times) // 2]:.3f}s")  # fmt: skip
    usage = shutil.disk_usage(root)
    print(
        f"disk: working copy + published = {2 * size / 1e6:.1f} MB, "
        f"+ {size / 1e6:.1f} MB during a publish; {usage.free / 1e9:.0f} GB free"
    )
    if len(sys.argv) <= 2:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
