"""`etl status` end to end: freshness, the last runs, and exit codes for monitoring."""

from __future__ import annotations

import duckdb
import orjson

from tests.integration.test_cli import SOME_TOKEN, env_with, etl


async def sync(db, sandbox, token: str, *extra: str) -> int:
    code, _ = await etl(
        "sync", "--db", str(db), "--base-url", sandbox.url, "-q", *extra, env=env_with(token)
    )
    return code


async def status(db, *extra: str) -> tuple[int, str]:
    return await etl("status", "--db", str(db), *extra, env={**env_with(None), "COLUMNS": "200"})


async def test_status_after_a_sync_shows_freshness_and_requests_per_stream(
    sandbox_factory, tmp_path
):
    db = tmp_path / "w.duckdb"
    async with sandbox_factory() as sandbox:
        assert await sync(db, sandbox, sandbox.config.token) == 0
    code, out = await status(db, "--max-age", "1h")
    assert code == 0, out
    assert "freshness" in out and "succeeded" in out
    deployments = [line for line in out.splitlines() if "│ deployments" in line]
    assert len(deployments) == 2  # its freshness row and its row in the run
    requests = [cell.strip() for cell in deployments[1].split("│")][7]
    assert int(requests) > 0
    code, out = await status(db, "--format", "json")
    report = orjson.loads(out)
    assert code == 0 and report["exit_code"] == 0 and report["problems"] == []
    assert {f["stream"] for f in report["freshness"]} >= {"deployments", "release_policies"}
    (run,) = report["runs"]
    by_stream = {s["stream"]: s for s in run["streams"]}
    assert by_stream["deployments"]["requests"] > 0
    assert by_stream["deployments"]["rate_limited"] == 0


async def test_data_older_than_max_age_exits_4_naming_the_streams(sandbox_factory, tmp_path):
    db = tmp_path / "w.duckdb"
    async with sandbox_factory() as sandbox:
        assert await sync(db, sandbox, sandbox.config.token) == 0
    with duckdb.connect(str(db)) as conn:  # the run happened two days ago
        conn.execute("UPDATE etl_runs SET ended_at = ended_at - INTERVAL 2 DAY")
    code, out = await status(db, "--max-age", "1d")
    assert code == 4
    assert "deployments: last loaded 2d00h ago (more than --max-age 1d00h)" in out
    code, _ = await status(db, "--max-age", "3d")
    assert code == 0


async def test_a_failed_last_run_exits_1(sandbox_factory, tmp_path):
    db = tmp_path / "w.duckdb"
    async with sandbox_factory() as sandbox:
        assert await sync(db, sandbox, sandbox.config.token) == 0
        assert await sync(db, sandbox, SOME_TOKEN) == 1
    code, out = await status(db)
    assert code == 1
    assert "problem: the last run" in out and "failed" in out
    assert "HTTP 401" in out


async def test_a_partial_last_run_exits_3(sandbox_factory, tmp_path):
    db = tmp_path / "w.duckdb"
    async with sandbox_factory() as sandbox:
        code = await sync(
            db, sandbox, sandbox.config.token, "--project", "payments", "--project", "nope"
        )
        assert code == 3
    code, out = await status(db)
    assert code == 3
    assert "was partial" in out


async def test_no_warehouse_and_a_bad_max_age_are_one_line_errors(tmp_path):
    code, out = await status(tmp_path / "none.duckdb")
    assert code == 1 and out.startswith("etl: error:") and "no warehouse here yet" in out
    code, out = await status(tmp_path / "none.duckdb", "--max-age", "soon")
    assert code == 2 and "--max-age: 'soon' is not an age" in out


async def test_a_killed_last_run_exits_1_as_abandoned(sandbox_factory, tmp_path):
    from tests.integration.processes import run_cli_signalled_after

    db = tmp_path / "w.duckdb"
    async with sandbox_factory(scale="medium", latency_ms=10) as sandbox:
        assert await sync(db, sandbox, sandbox.config.token, "--stream", "projects") == 0
        args = ["sync", "--db", str(db), "--base-url", sandbox.url, "-q"]
        env = env_with(sandbox.config.token)
        await run_cli_signalled_after(args, env, sandbox, pages=5)  # SIGKILL
    code, out = await status(db)
    assert code == 1
    assert "abandoned" in out and "killed or crashed" in out
