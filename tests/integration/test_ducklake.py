"""A DuckLake on a real PostgreSQL, written by several `etl sync` processes at once.

Each test gets a lake of its own (a new catalog database on the session's PostgreSQL, data
under tmp_path) and runs the real CLI in subprocesses against the sandbox over HTTP.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import duckdb
import pytest

from tests.integration.warehouse_truth import table_fingerprint, warehouse_differences
from tests.postgres import dump_database

CONFIG = """
[limits]
requests_per_second = 2000
[sync]
window_days = 30
batch_records = {batch}
"""
DEPLOYMENTS_PATH = "/api/v2/engineering-insights/deployments"
EXIT_WITHIN_S = 120


class Worker:
    """One `etl sync` process, its output kept in files."""

    def __init__(self, process: asyncio.subprocess.Process, out: Path, err: Path) -> None:
        self.process, self.out, self.err = process, out, err

    async def wait(self) -> int:
        try:
            return await asyncio.wait_for(self.process.wait(), EXIT_WITHIN_S)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            raise AssertionError(f"a worker did not end within {EXIT_WITHIN_S}s") from None

    def output(self) -> str:
        return self.out.read_text() + self.err.read_text()


async def start_worker(tmp_path: Path, name: str, args: list[str], env: dict[str, str]) -> Worker:
    out, err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "etl", *args, env=env, stdout=stdout, stderr=stderr
        )
    return Worker(process, out, err)


def sync_args(tmp_path: Path, lake, sandbox, *more: str, batch: int = 300) -> list[str]:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(batch=batch))
    return [
        "sync", "--config", str(config), "--db", lake.target, "--data-path", str(lake.data_path),
        "--base-url", sandbox.url, *more,
    ]  # fmt: skip


def environment(lake, sandbox) -> dict[str, str]:
    return {**lake.env, "LD_API_TOKEN": sandbox.config.token}


def project_keys(sandbox) -> list[str]:
    return [project["key"] for project in sandbox.dataset.projects]


def ledger(lake) -> list[tuple[str, str]]:
    conn = open_lake(lake)
    try:
        return conn.execute("SELECT status, options->>'$.scope.projects' FROM etl_runs").fetchall()
    finally:
        conn.close()


def open_lake(lake) -> duckdb.DuckDBPyConnection:
    from etl.warehouse import open_reader

    return open_reader(lake.target, lake.settings())


def test_a_lake_has_the_same_tables_and_columns_as_a_duckdb_file(lake, tmp_path):
    from etl.warehouse import open_warehouse

    columns = (
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_catalog = 'warehouse' AND table_name <> 'etl_lake_writer' ORDER BY ALL"
    )
    shapes = []
    for target, settings in [(lake.target, lake.settings()), (tmp_path / "w.duckdb", None)]:
        writer = open_warehouse(target, settings).writer()
        try:
            writer.migrate()
            shapes.append(writer.conn.execute(columns).fetchall())
        finally:
            writer.close()
    in_lake, in_file = shapes
    assert in_lake == in_file
    assert {row[0] for row in in_lake} >= {"deployments", "etl_runs", "deployment_lead_times"}


async def test_one_worker_into_a_new_lake_equals_the_truth_and_a_second_run_changes_nothing(
    sandbox_factory, lake, tmp_path
):
    async with sandbox_factory(scale="small") as sandbox:
        args, env = sync_args(tmp_path, lake, sandbox, "-q"), environment(lake, sandbox)
        first = await start_worker(tmp_path, "first", args, env)
        assert await first.wait() == 0, first.output()
        assert warehouse_differences(lake.target, sandbox.dataset.truth(), lake.settings()) == []
        before = table_fingerprint(lake.target, lake.settings())
        second = await start_worker(tmp_path, "second", args, env)
        assert await second.wait() == 0, second.output()
        assert table_fingerprint(lake.target, lake.settings()) == before
    assert [status for status, _ in ledger(lake)] == ["succeeded", "succeeded"]


async def test_three_workers_for_three_projects_at_once_with_faults_equal_the_truth(
    sandbox_factory, lake, tmp_path
):
    async with sandbox_factory(scale="small", fault_rate=0.05, latency_ms=2) as sandbox:
        env = environment(lake, sandbox)
        keys = project_keys(sandbox)
        assert len(keys) == 3
        workers = [
            await start_worker(
                tmp_path, key, sync_args(tmp_path, lake, sandbox, "-q", "--project", key), env
            )
            for key in keys
        ]
        codes = [await worker.wait() for worker in workers]
        assert codes == [0, 0, 0], [worker.output() for worker in workers]
        # warehouse_differences also lists every key held twice
        assert warehouse_differences(lake.target, sandbox.dataset.truth(), lake.settings()) == []
    assert sorted(ledger(lake)) == sorted(("succeeded", f'["{key}"]') for key in keys)


async def test_a_worker_killed_mid_run_and_restarted_while_others_run_equals_the_truth(
    sandbox_factory, lake, tmp_path
):
    async with sandbox_factory(scale="small", latency_ms=15) as sandbox:
        env = environment(lake, sandbox)
        keys = project_keys(sandbox)
        victim, *others = keys

        def victim_pages() -> int:
            return sum(
                1
                for record in sandbox.requests
                if record.path == DEPLOYMENTS_PATH and record.query.get("projectKey") == victim
            )

        args = {key: sync_args(tmp_path, lake, sandbox, "-q", "--project", key) for key in keys}
        running = [await start_worker(tmp_path, key, args[key], env) for key in others]
        doomed = await start_worker(tmp_path, f"{victim}-killed", args[victim], env)
        while victim_pages() < 4:
            assert doomed.process.returncode is None, "the run ended before the kill"
            await asyncio.sleep(0.005)
        doomed.process.send_signal(signal.SIGKILL)
        assert await doomed.wait() == -signal.SIGKILL
        restarted = await start_worker(tmp_path, victim, args[victim], env)
        codes = [await worker.wait() for worker in [*running, restarted]]
        assert codes == [0, 0, 0], [worker.output() for worker in [*running, restarted]]
        assert warehouse_differences(lake.target, sandbox.dataset.truth(), lake.settings()) == []
    statuses = sorted(status for status, _ in ledger(lake))
    assert statuses == ["abandoned", "succeeded", "succeeded", "succeeded"]


READER = """
import os, sys, time
from pathlib import Path
from etl.config import WarehouseSettings
from etl.warehouse import open_reader

target, stop, log = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
settings = WarehouseSettings(path=Path(target))
held = open_reader(target, settings)
queries = errors = 0
while not stop.exists():
    for conn in (held, None):
        try:
            conn = conn or open_reader(target, settings)
            conn.execute("SELECT count(*) FROM deployments").fetchone()
            conn.execute("SELECT count(*) FROM deployment_lead_times").fetchone()
            queries += 1
            if conn is not held:
                conn.close()
        except Exception as exc:
            errors += 1
            with log.open("a") as out:
                out.write(f"{type(exc).__name__}: {exc}\\n")
print(queries, errors)
"""


async def test_a_reader_querying_in_a_loop_during_concurrent_writes_never_errors(
    sandbox_factory, lake, tmp_path
):
    async with sandbox_factory(scale="small", latency_ms=2) as sandbox:
        env = environment(lake, sandbox)
        first, *rest = project_keys(sandbox)
        setup = await start_worker(
            tmp_path, "setup", sync_args(tmp_path, lake, sandbox, "-q", "--project", first), env
        )
        assert await setup.wait() == 0, setup.output()
        stop, errors = tmp_path / "stop", tmp_path / "reader-errors.txt"
        reader = await asyncio.create_subprocess_exec(
            sys.executable, "-c", READER, lake.target, str(stop), str(errors),
            env=env, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        writers = [
            await start_worker(
                tmp_path, key, sync_args(tmp_path, lake, sandbox, "-q", "--project", key), env
            )
            for key in rest
        ]
        codes = [await worker.wait() for worker in writers]
        stop.touch()
        out, _ = await asyncio.wait_for(reader.communicate(), EXIT_WITHIN_S)
    assert codes == [0, 0], [worker.output() for worker in writers]
    assert reader.returncode == 0
    queries, failures = map(int, out.split()[-2:])
    assert failures == 0, errors.read_text()
    assert queries > 0


async def test_the_postgres_password_never_appears_in_output_logs_or_the_lake(
    sandbox_factory, lake, tmp_path
):
    password = lake.pg.password.encode()
    async with sandbox_factory(scale="tiny", fault_rate=0.05) as sandbox:
        env = {**environment(lake, sandbox), "ETL_LOG_LEVEL": "DEBUG"}
        config = tmp_path / "debug.toml"
        config.write_text(CONFIG.format(batch=50) + "[log]\nlevel = 'DEBUG'\n")
        args = [
            "sync", "--config", str(config), "--db", lake.target,
            "--data-path", str(lake.data_path), "--base-url", sandbox.url,
        ]  # fmt: skip
        synced = await start_worker(tmp_path, "sync", args, env)
        assert await synced.wait() == 0, synced.output()
        wrong_port = lake.target.replace(f"port={lake.pg.port}", "port=1")
        refused = await start_worker(tmp_path, "refused", [*args[:4], wrong_port, *args[5:]], env)
        assert await refused.wait() == 1
        bad_password = {**env, "PGPASSWORD": lake.pg.password + "-wrong"}
        rejected = await start_worker(tmp_path, "rejected", args, bad_password)
        assert await rejected.wait() == 1
        assert "password authentication failed" in rejected.output()
        queried = await start_worker(
            tmp_path, "sql",
            ["sql", "--db", lake.target, "SELECT * FROM duckdb_databases()", "--format", "csv"],
            env,
        )  # fmt: skip
        assert await queried.wait() == 0, queried.output()
        status = await start_worker(tmp_path, "status", ["status", "--db", lake.target], env)
        assert await status.wait() == 0, status.output()
    outputs = b"".join(path.read_bytes() for path in tmp_path.glob("*.out")) + b"".join(
        path.read_bytes() for path in tmp_path.glob("*.err")
    )
    assert b"succeeded" in outputs  # etl status printed the ledger
    assert password not in outputs
    files = [path for path in lake.data_path.rglob("*") if path.is_file()]
    assert files, "the lake wrote no data files"
    assert all(password not in path.read_bytes() for path in files)
    assert password not in dump_database(lake.pg)


async def test_a_password_in_the_conninfo_is_refused_before_anything_runs(
    sandbox_factory, lake, tmp_path
):
    async with sandbox_factory(scale="tiny") as sandbox:
        env = environment(lake, sandbox)
        target = f"{lake.target} password=hunter2"
        args = ["sync", "--db", target, "--data-path", str(lake.data_path)]
        worker = await start_worker(tmp_path, "refused", [*args, "--base-url", sandbox.url], env)
        assert await worker.wait() == 2
    assert "must not hold a password" in worker.output()
    assert "hunter2" not in worker.output()


def test_a_reader_of_a_lake_whose_first_run_has_not_made_its_ledger_yet_is_told_to_sync(lake):
    from etl.errors import WarehouseError
    from etl.warehouse.ducklake import DuckLake

    DuckLake(lake.target, lake.settings()).connect(read_only=False).close()  # catalog only
    with pytest.raises(WarehouseError, match="no run has finished on this lake yet"):
        open_lake(lake)


def test_work_retried_after_duckdb_invalidated_the_instance_runs_on_a_new_one(lake):
    from etl.warehouse import open_warehouse

    writer = open_warehouse(lake.target, lake.settings()).writer()
    seen = []

    def work(conn):
        seen.append(conn)
        if len(seen) == 1:  # what DuckDB raises once the catalog went away mid-statement
            raise duckdb.FatalException("Failed: database has been invalidated because of …")
        return conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0]

    try:
        writer.migrate()
        assert writer.retrying(work, "planning") > 0
    finally:
        writer.close()
    assert len(seen) == 2 and seen[1] is not seen[0]
