"""A run killed with SIGKILL at a random moment, then run again, ends equal to the truth."""

from __future__ import annotations

import asyncio
import os
import random
import sys

import duckdb
import pytest

from tests.integration.warehouse_truth import warehouse_differences

CONFIG = """
[limits]
requests_per_second = 2000
[sync]
window_days = 30
batch_records = 1000
"""


async def run_cli(args: list[str], env: dict[str, str], kill_after: float | None) -> int | None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "etl", *args,
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    if kill_after is None:
        return await process.wait()
    try:
        return await asyncio.wait_for(process.wait(), kill_after)
    except TimeoutError:
        process.kill()
        await process.wait()
        return None


@pytest.mark.slow
async def test_sigkill_mid_run_then_rerun_equals_truth(sandbox_factory, tmp_path):
    rng = random.Random(7)
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    db = tmp_path / "warehouse.duckdb"
    # Latency keeps a run well past the latest kill (4.5 s), so every kill lands mid-run.
    async with sandbox_factory(scale="medium", latency_ms=40) as sandbox:
        env = {**os.environ, "LD_API_TOKEN": sandbox.config.token}
        args = ["sync", "--config", str(config), "--db", str(db), "--base-url", sandbox.url, "-q"]
        kills = 0
        for _ in range(3):
            if await run_cli(args, env, kill_after=rng.uniform(2.5, 4.5)) is None:
                kills += 1
        assert kills >= 1, "no run was killed mid-way; the test proved nothing"
        assert await run_cli(args, env, kill_after=None) == 0
        assert warehouse_differences(db, sandbox.dataset.truth()) == []
    with duckdb.connect(str(db), read_only=True) as conn:
        rows = conn.execute("SELECT status FROM etl_runs ORDER BY started_at").fetchall()
    statuses = [status for (status,) in rows]
    assert statuses.count("abandoned") == kills
    assert statuses[-1] == "succeeded"
