"""A lake's services failing halfway through a sync: PostgreSQL, then the object store.

Each test stops one service of the session (the real PostgreSQL, the moto S3 server) while a
worker is in the middle of its run, and always starts it again before it ends.
"""

from __future__ import annotations

import asyncio

from etl.warehouse import duplicate_keys
from tests.integration.lakeprocs import environment, machine, start, sync_args
from tests.integration.warehouse_truth import warehouse_differences
from tests.postgres import start_server, stop_server

DEPLOYMENTS_PATH = "/api/v2/engineering-insights/deployments"
# Give up on a service after 2 s (the default is 30 s): the test's outage lasts until then.
IMPATIENT = "outage_retry_s = 2"


def ledger(lake) -> list[str]:
    from etl.warehouse.ducklake import DuckLake

    conn = DuckLake(lake.target, lake.settings()).connect(read_only=True)
    try:
        rows = conn.execute("SELECT status FROM etl_runs ORDER BY started_at").fetchall()
        return [status for (status,) in rows]
    finally:
        conn.close()


def doubled_keys(lake) -> list[str]:
    from etl.warehouse.ducklake import DuckLake

    conn = DuckLake(lake.target, lake.settings()).connect(read_only=True)
    try:
        return duplicate_keys(conn)
    finally:
        conn.close()


async def halfway(sandbox, worker) -> None:
    """Until the worker has read a third of the deployment pages (still running)."""
    while sum(1 for r in sandbox.requests if r.path == DEPLOYMENTS_PATH) < 5:
        assert worker.process.returncode is None, worker.output()
        await asyncio.sleep(0.005)


def one_line_failure(output: str) -> str:
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("etl: error: ")]
    assert len(errors) == 1, output
    return errors[0]


async def test_postgres_stopped_halfway_fails_the_run_naming_it_and_a_later_run_equals_the_truth(
    sandbox_factory, s3_lake, postgres, tmp_path
):
    lake = s3_lake
    async with sandbox_factory(scale="small", latency_ms=20) as sandbox:
        env = environment(lake, sandbox)
        home = machine(tmp_path, "worker", lake, IMPATIENT, batch=100)
        worker = await start(home, sync_args(lake, sandbox), env)
        await halfway(sandbox, worker)
        stop_server(postgres)
        try:
            assert await worker.wait() == 1
        finally:
            start_server(postgres)
        line = one_line_failure(worker.output())
        assert f"the PostgreSQL catalog (127.0.0.1:{postgres.port}) did not answer" in line
        assert doubled_keys(lake) == []
        again = await start(home, sync_args(lake, sandbox), env)
        assert await again.wait() == 0, again.output()
        assert warehouse_differences(lake.target, sandbox.dataset.truth(), lake.settings()) == []
    # The failed run could not write its outcome to the catalog that was down: the next run
    # found its process gone and marked it abandoned.
    assert ledger(lake) == ["abandoned", "succeeded"]


async def test_the_object_store_stopped_halfway_fails_the_run_naming_it_and_a_later_run_equals_the_truth(  # noqa: E501
    sandbox_factory, s3_lake, tmp_path
):
    lake = s3_lake
    store = lake.store
    async with sandbox_factory(scale="small", latency_ms=20) as sandbox:
        env = environment(lake, sandbox)
        home = machine(tmp_path, "worker", lake, IMPATIENT, batch=100)
        worker = await start(home, sync_args(lake, sandbox), env)
        await halfway(sandbox, worker)
        store.stop()
        try:
            assert await worker.wait() == 1
        finally:
            store.start()
        line = one_line_failure(worker.output())
        assert f"the object store (s3://{lake.bucket}/ld/) did not answer" in line
        assert doubled_keys(lake) == []
        # Readers stay pinned before it, but `etl status` reports the failed run.
        status = await start(home, ["status", "--db", lake.target], env)
        assert await status.wait() == 1, status.output()
        assert "failed" in status.output()
        again = await start(home, sync_args(lake, sandbox), env)
        assert await again.wait() == 0, again.output()
        assert warehouse_differences(lake.target, sandbox.dataset.truth(), lake.settings()) == []
    assert ledger(lake) == ["failed", "succeeded"]


async def test_a_postgres_restart_during_a_run_is_waited_out_and_the_run_equals_the_truth(
    sandbox_factory, s3_lake, postgres, tmp_path
):
    lake = s3_lake
    async with sandbox_factory(scale="small", latency_ms=20) as sandbox:
        env = environment(lake, sandbox)
        home = machine(tmp_path, "worker", lake, batch=100)
        worker = await start(home, sync_args(lake, sandbox), env)
        await halfway(sandbox, worker)
        stop_server(postgres)
        try:
            await asyncio.sleep(3)  # down for longer than a batch takes to form (2 s at most)
        finally:
            start_server(postgres)
        assert await worker.wait() == 0, worker.output()
        assert "did not answer" in worker.output()  # the restart was met, and waited out
        assert warehouse_differences(lake.target, sandbox.dataset.truth(), lake.settings()) == []
    assert ledger(lake) == ["succeeded"]
