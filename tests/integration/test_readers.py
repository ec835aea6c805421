"""BI readers beside the sync: real processes reading the published file while syncs run."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import duckdb

from tests.integration.processes import (
    run_cli,
    run_cli_signalled_after,
    spawn_etl,
    until_pages_served,
)
from tests.integration.reader import STATE

WAIT_S = 60


def published_state(db: Path) -> tuple[int, int]:
    with duckdb.connect(str(db), read_only=True) as conn:
        deployments, runs = conn.execute(STATE).fetchone()
    return deployments, runs


def seen(out: Path) -> list[dict]:
    text = out.read_text(encoding="utf-8") if out.exists() else ""
    return [json.loads(line) for line in text.splitlines() if line.endswith("}")]


@asynccontextmanager
async def reader(db: Path, mode: str, out: Path) -> AsyncIterator[Path]:
    """A reader process in `mode`, stopped at the end; yields the file it writes."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.integration.reader", str(db), mode, str(out),
        cwd=Path(__file__).parents[2],
    )  # fmt: skip
    try:
        await until_seen(out, lambda lines: len(lines) > 0)
        yield out
    finally:
        out.with_name(out.name + ".stop").touch()
        try:
            await asyncio.wait_for(process.wait(), WAIT_S)
        except TimeoutError:
            process.kill()
            await process.wait()


async def until_seen(out: Path, condition) -> None:
    for _ in range(WAIT_S * 100):
        if condition(seen(out)):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{out.name}: never saw what was waited for: {seen(out)[-3:]}")


def sync_args(db: Path, sandbox) -> list[str]:
    return ["sync", "--db", str(db), "--base-url", sandbox.url, "-q"]


async def test_readers_see_only_end_of_run_states_while_two_syncs_run(sandbox_factory, tmp_path):
    db = tmp_path / "warehouse.duckdb"
    async with sandbox_factory(scale="tiny", latency_ms=5) as sandbox:
        env = {**os.environ, "LD_API_TOKEN": sandbox.config.token}
        assert await run_cli(sync_args(db, sandbox), env) == 0
        ends = [published_state(db)]
        async with (
            reader(db, "hold", tmp_path / "hold.jsonl") as held,
            reader(db, "reopen", tmp_path / "reopen.jsonl") as reopened,
        ):
            for _ in range(2):
                sandbox.dataset.advance()
                assert await run_cli(sync_args(db, sandbox), env) == 0
                ends.append(published_state(db))
            await until_seen(reopened, lambda lines: lines[-1].get("state") == list(ends[-1]))
    assert len(set(ends)) == 3  # each sync brought new data
    reopen_lines, hold_lines = seen(reopened), seen(held)
    assert [line for line in reopen_lines + hold_lines if "error" in line] == []
    assert {tuple(line["state"]) for line in reopen_lines} <= set(ends)
    assert {tuple(line["state"]) for line in hold_lines} == {ends[0]}  # its file, still there


async def test_a_killed_sync_leaves_readers_the_last_good_state(sandbox_factory, tmp_path):
    db = tmp_path / "warehouse.duckdb"
    async with sandbox_factory(scale="small", latency_ms=10) as sandbox:
        env = {**os.environ, "LD_API_TOKEN": sandbox.config.token}
        args = sync_args(db, sandbox)
        assert await run_cli([*args, "--stream", "projects,environments"], env) == 0
        good = published_state(db)
        async with reader(db, "reopen", tmp_path / "reopen.jsonl") as reopened:
            await run_cli_signalled_after([*args, "--config", str(slow(tmp_path))], env, sandbox, 3)
        assert published_state(db) == good
        assert [line for line in seen(reopened) if line.get("state") != list(good)] == []
        assert await run_cli(args, env) == 0  # the next run picks up where the killed one was
    assert published_state(db)[0] > good[0]


async def test_etl_sql_answers_while_a_sync_runs(sandbox_factory, tmp_path):
    db = tmp_path / "warehouse.duckdb"
    async with sandbox_factory(scale="small") as sandbox:
        env = {**os.environ, "LD_API_TOKEN": sandbox.config.token}
        args = sync_args(db, sandbox)
        assert await run_cli([*args, "--stream", "projects,environments"], env) == 0
        sync = await spawn_etl([*args, "--config", str(slow(tmp_path))], env)
        await until_pages_served(sync, sandbox, pages=2)
        query = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "etl", "sql", "--db", str(db), "--format", "csv",
            "SELECT count(*) AS n FROM projects",
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await query.communicate()
        assert sync.returncode is None, "the sync ended before the query: it proved nothing"
        assert (query.returncode, out.decode().split()) == (0, ["n", "3"])
        assert await sync.wait() == 0


def slow(tmp_path: Path) -> Path:
    """A config that paces the sync's requests, so that it is still running a while later."""
    config = tmp_path / "slow.toml"
    config.write_text("[limits]\nrequests_per_second = 10\n")
    return config
