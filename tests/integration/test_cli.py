"""The `etl` command as a user runs it: real processes, the sandbox, a real DuckDB file."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

README = Path(__file__).parents[2] / "README.md"
SOME_TOKEN = "api-0f1e2d3c-4b5a-4968-8776-5a4b3c2d1e0f"


async def etl(*args: str, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "etl", *args,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode()


def env_with(token: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "LD_API_TOKEN"}
    if token is not None:
        env["LD_API_TOKEN"] = token
    return env


async def test_sync_command_succeeds_and_never_prints_the_token(sandbox_factory, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[log]\nlevel = "DEBUG"\n[limits]\nrequests_per_second = 2000\n')
    async with sandbox_factory() as sandbox:
        code, out = await etl(
            "sync", "--config", str(config), "--db", str(tmp_path / "w.duckdb"),
            "--base-url", sandbox.url, env=env_with(sandbox.config.token),
        )  # fmt: skip
    assert code == 0, out
    assert "succeeded" in out
    assert sandbox.config.token not in out


async def test_rejected_token_is_one_line_without_traceback_or_token(sandbox_factory, tmp_path):
    async with sandbox_factory() as sandbox:
        code, out = await etl(
            "sync", "--db", str(tmp_path / "w.duckdb"), "--base-url", sandbox.url, "-q",
            env=env_with("api-not-the-right-token"),
        )  # fmt: skip
    assert code == 1
    assert "Traceback" not in out
    assert "api-not-the-right-token" not in out
    assert re.search(r"etl: error: run \S+ failed: .*HTTP 401", out)


async def test_missing_token_exits_2_naming_the_variable(tmp_path):
    code, out = await etl("sync", "--db", str(tmp_path / "w.duckdb"), env=env_with(None))
    assert code == 2
    assert (
        out.strip()
        == "etl: error: environment variable LD_API_TOKEN is not set (it holds the API token)"
    )


async def test_invalid_config_exits_2_naming_the_key(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("[limits]\nmax_in_flight = 0\n")
    code, out = await etl("sync", "--config", str(config), env=env_with(SOME_TOKEN))
    assert code == 2
    assert "limits.max_in_flight" in out and "Traceback" not in out


async def test_warehouse_path_that_cannot_be_created_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, out = await etl("sync", "--db", str(blocker / "w.duckdb"), env=env_with(SOME_TOKEN))
    assert code == 1
    assert out.strip().startswith("etl: error:") and "cannot create the warehouse" in out
    assert "Traceback" not in out


async def test_unknown_stream_exits_2(tmp_path):
    code, out = await etl("sync", "--stream", "deploymnets", env=env_with(SOME_TOKEN))
    assert code == 2
    assert "unknown stream 'deploymnets'" in out


async def test_schedule_refuses_an_interval_below_a_tenth_of_a_minute(tmp_path):
    code, out = await etl("schedule", "--every", "-1", "--runs", "1", env=env_with(SOME_TOKEN))
    assert code == 2
    assert "--every" in out and "Traceback" not in out


async def test_sql_and_status_read_the_warehouse(sandbox_factory, tmp_path):
    db = str(tmp_path / "w.duckdb")
    async with sandbox_factory() as sandbox:
        await etl("sync", "--db", db, "--base-url", sandbox.url, "-q",
                  env=env_with(sandbox.config.token))  # fmt: skip
    code, out = await etl(
        "sql",
        "--db",
        db,
        "--format",
        "csv",
        "SELECT count(*) AS n FROM projects",
        env=env_with(None),
    )
    assert (code, out.split()) == (0, ["n", "2"])
    code, out = await etl("status", "--db", db, env=env_with(None))
    assert code == 0 and "succeeded" in out


async def test_every_command_is_documented_in_the_readme():
    from etl.cli import cli

    text = README.read_text()
    for name in cli.commands:
        assert f"etl {name}" in text, name
