"""A run killed with SIGKILL at a random moment, then run again, ends equal to the truth."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys

import duckdb
import orjson
import pytest

from etl.warehouse.duckdb_file import DuckDBFile
from tests.integration.processes import EXIT_WITHIN_S, run_cli, run_cli_signalled_after
from tests.integration.warehouse_truth import (
    committed_state_differences,
    warehouse_differences,
)

CONFIG = """
[limits]
requests_per_second = 2000
[sync]
window_days = 30
batch_records = 1000
"""


@pytest.mark.slow
async def test_sigkill_mid_run_then_rerun_equals_truth(sandbox_factory, tmp_path):
    rng = random.Random(7)
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    db = tmp_path / "warehouse.duckdb"
    async with sandbox_factory(scale="medium", latency_ms=10) as sandbox:
        env = {**os.environ, "LD_API_TOKEN": sandbox.config.token}
        args = ["sync", "--config", str(config), "--db", str(db), "--base-url", sandbox.url, "-q"]
        kills = 3
        for _ in range(kills):
            await run_cli_signalled_after(args, env, sandbox, pages=rng.randint(5, 30))
        assert await run_cli(args, env) == 0
        assert warehouse_differences(db, sandbox.dataset.truth()) == []
    with duckdb.connect(str(db), read_only=True) as conn:
        rows = conn.execute("SELECT status FROM etl_runs ORDER BY started_at").fetchall()
    assert [status for (status,) in rows] == ["abandoned"] * kills + ["succeeded"]


async def test_sigterm_mid_run_commits_what_it_wrote_consistently_and_exits_143(
    sandbox_factory, tmp_path
):
    db = tmp_path / "warehouse.duckdb"
    config = tmp_path / "config.toml"
    config.write_text(CONFIG + '[log]\nlevel = "DEBUG"\nformat = "json"\n')
    async with sandbox_factory(scale="medium", latency_ms=10) as sandbox:
        env = {**os.environ, "LD_API_TOKEN": sandbox.config.token}
        args = ["sync", "--config", str(config), "--db", str(db), "--base-url", sandbox.url, "-q"]
        # Signalled once the run says it committed a batch (its own log), not at a time.
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "etl", *args,
            env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert process.stderr is not None
        async for line in process.stderr:
            record = orjson.loads(line)
            if record["event"] == "batch_committed" and record["counts"].get("deployments"):
                process.send_signal(signal.SIGTERM)
                break
        else:
            raise AssertionError("the run ended before its first commit: it proved nothing")
        await process.stderr.read()
        code = await asyncio.wait_for(process.wait(), EXIT_WITHIN_S)
        assert code == 143
        assert not db.exists()  # nothing published: readers never see a failed run's state
        working = DuckDBFile(db).working  # the sync's own copy holds what it committed
        with duckdb.connect(str(working), read_only=True) as conn:
            rows = conn.execute("SELECT status, error FROM etl_runs").fetchall()
            committed = conn.execute("SELECT count(*) FROM deployments").fetchone()[0]
        assert rows == [("failed", "interrupted")]
        assert committed > 0
        assert committed_state_differences(working, sandbox.dataset.truth()) == []
        assert await run_cli(args, env) == 0
        assert warehouse_differences(db, sandbox.dataset.truth()) == []
