"""The kill loop: one medium sync under faults and a rate limit, SIGKILLed 20 times at random
points, then run once more undisturbed, ends equal to the truth, with no key held twice and
every ledger row closed."""

from __future__ import annotations

import asyncio
import os
import random
import signal

import duckdb
import pytest

from tests.integration.processes import deployment_pages_served, run_cli, spawn_etl
from tests.integration.test_crash import CONFIG
from tests.integration.warehouse_truth import warehouse_differences

KILLS = 20


async def killed_at_random(
    args: list[str], env: dict[str, str], sandbox, rng: random.Random
) -> bool:
    """Start `etl sync`, SIGKILL it after a random number of deployment pages plus a random
    few milliseconds (so fetching, normalizing and committing are all hit); False when the
    run finished first."""
    pages = rng.randint(1, 12)
    served_before = deployment_pages_served(sandbox)
    process = await spawn_etl(args, env)
    while deployment_pages_served(sandbox) - served_before < pages:
        if process.returncode is not None:
            return False
        await asyncio.sleep(0.002)
    await asyncio.sleep(rng.uniform(0, 0.05))
    if process.returncode is not None:
        return False
    process.send_signal(signal.SIGKILL)
    await process.wait()
    return True


@pytest.mark.slow
async def test_twenty_sigkills_then_one_clean_run_equal_the_truth(sandbox_factory, tmp_path):
    rng = random.Random(17)
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    db = tmp_path / "warehouse.duckdb"
    async with sandbox_factory(
        scale="medium", fault_rate=0.05, rate=400, rate_window_s=1.0, latency_ms=5
    ) as sandbox:
        env = {**os.environ, "LD_API_TOKEN": sandbox.config.token}
        args = ["sync", "--config", str(config), "--db", str(db), "--base-url", sandbox.url, "-q"]
        kills = finished = 0
        while kills < KILLS:
            assert finished <= KILLS, "the runs kept finishing before the kill"
            if await killed_at_random(args, env, sandbox, rng):
                kills += 1
            else:
                finished += 1
        assert await run_cli(args, env) == 0
        assert warehouse_differences(db, sandbox.dataset.truth()) == []
    with duckdb.connect(str(db), read_only=True) as conn:
        statuses = [
            s for (s,) in conn.execute("SELECT status FROM etl_runs ORDER BY started_at").fetchall()
        ]
    assert statuses[-1] == "succeeded"
    assert statuses.count("abandoned") >= KILLS
    assert set(statuses) <= {"abandoned", "failed", "succeeded"}  # none left running
