"""A DuckLake whose data live in a bucket, written by workers that share no local disk.

The catalog is the session's real PostgreSQL (TCP), the data path a bucket of the session's
S3-compatible server (moto, HTTP); every worker runs in a directory of its own.
"""

from __future__ import annotations

import asyncio
import signal

from tests.integration.lakeprocs import environment, machine, start, sync_args
from tests.integration.warehouse_truth import warehouse_differences

DEPLOYMENTS_PATH = "/api/v2/engineering-insights/deployments"


def project_keys(sandbox) -> list[str]:
    return [project["key"] for project in sandbox.dataset.projects]


def ledger(lake) -> list[str]:
    from etl.warehouse.ducklake import DuckLake

    conn = DuckLake(lake.target, lake.settings()).connect(read_only=True)
    try:
        return sorted(row[0] for row in conn.execute("SELECT status FROM etl_runs").fetchall())
    finally:
        conn.close()


def parquet_files_under(path) -> list[str]:
    return [str(file) for file in path.rglob("*.parquet")]


async def test_three_workers_on_s3_with_faults_equal_the_truth_and_share_no_disk(
    sandbox_factory, s3_lake, tmp_path
):
    lake = s3_lake
    async with sandbox_factory(scale="small", fault_rate=0.05, latency_ms=2) as sandbox:
        env = environment(lake, sandbox)
        workers = [
            await start(
                machine(tmp_path, key, lake), sync_args(lake, sandbox, "--project", key), env
            )
            for key in project_keys(sandbox)
        ]
        codes = [await worker.wait() for worker in workers]
        assert codes == [0, 0, 0], [worker.output() for worker in workers]
        # warehouse_differences also lists every key held twice
        assert warehouse_differences(lake.target, sandbox.dataset.truth(), lake.settings()) == []
    assert ledger(lake) == ["succeeded"] * 3
    objects = lake.store.objects(lake.bucket)
    assert any(key.startswith("ld/main/deployments/") for key in objects), objects[:5]
    assert parquet_files_under(tmp_path) == []


async def test_a_worker_killed_mid_run_on_s3_and_restarted_equals_the_truth(
    sandbox_factory, s3_lake, tmp_path
):
    lake = s3_lake
    async with sandbox_factory(scale="small", latency_ms=15) as sandbox:
        env = environment(lake, sandbox)
        victim, *others = project_keys(sandbox)

        def victim_pages() -> int:
            return sum(
                1
                for record in sandbox.requests
                if record.path == DEPLOYMENTS_PATH and record.query.get("projectKey") == victim
            )

        def worker(key: str, name: str):
            home = machine(tmp_path, name, lake)
            return start(home, sync_args(lake, sandbox, "--project", key), env)

        running = [await worker(key, key) for key in others]
        doomed = await worker(victim, f"{victim}-killed")
        while victim_pages() < 4:
            assert doomed.process.returncode is None, "the run ended before the kill"
            await asyncio.sleep(0.005)
        doomed.process.send_signal(signal.SIGKILL)
        assert await doomed.wait() == -signal.SIGKILL
        restarted = await worker(victim, victim)
        codes = [await proc.wait() for proc in [*running, restarted]]
        assert codes == [0, 0, 0], [proc.output() for proc in [*running, restarted]]
        assert warehouse_differences(lake.target, sandbox.dataset.truth(), lake.settings()) == []
    assert ledger(lake) == ["abandoned", "succeeded", "succeeded", "succeeded"]


READER = """
import json, sys, time
from pathlib import Path
from etl.config import WarehouseSettings
from etl.errors import WarehouseError
from etl.warehouse import open_reader
from etl.warehouse.ducklake import DuckLake

settings = WarehouseSettings(**json.loads(sys.argv[1]))
stop, out = Path(sys.argv[2]), Path(sys.argv[3])
COUNT = "SELECT count(*) FROM deployments"

def count(conn):
    try:
        return conn.execute(COUNT).fetchone()[0]
    finally:
        conn.close()

last = False
while not last:
    last = stop.exists()  # one more read after the writers are done
    try:
        pinned = count(open_reader(settings.path, settings))
    except WarehouseError as exc:
        pinned = None
        if "no run has finished" not in str(exc) and "no warehouse here yet" not in str(exc):
            raise
    try:
        latest = count(DuckLake(settings.path, settings).connect(read_only=True))
    except Exception:
        latest = None
    with out.open("a") as log:
        log.write(json.dumps([pinned, latest]) + "\\n")
    time.sleep(1.0)  # leave the two cores to the workers (a read costs ~1 s of CPU)
"""


def counts_at_whole_snapshots(lake) -> set[int]:
    from etl.warehouse.ducklake import DuckLake

    conn = DuckLake(lake.target, lake.settings()).connect(read_only=True)
    try:
        snapshots = conn.execute("SELECT snapshot_id FROM etl_runs WHERE snapshot_whole").fetchall()
        return {
            conn.execute(f"SELECT count(*) FROM deployments AT (VERSION => {s})").fetchone()[0]
            for (s,) in snapshots
        }
    finally:
        conn.close()


async def test_a_pinned_reader_during_a_three_worker_sync_sees_only_finished_runs(
    sandbox_factory, s3_lake, tmp_path
):
    import json
    import sys

    lake = s3_lake
    settings = lake.settings().model_dump(mode="json", exclude_none=True)
    stop, seen = tmp_path / "stop", tmp_path / "seen.jsonl"
    async with sandbox_factory(scale="small", latency_ms=5) as sandbox:
        env = environment(lake, sandbox)
        keys = project_keys(sandbox)
        reader = await asyncio.create_subprocess_exec(
            sys.executable, "-c", READER, json.dumps(settings), str(stop), str(seen), env=env
        )
        workers = [
            await start(
                machine(tmp_path, key, lake, batch=200),
                sync_args(lake, sandbox, "--project", key),
                env,
            )
            for key in keys
        ]
        codes = [await worker.wait() for worker in workers]
        stop.touch()
        assert await asyncio.wait_for(reader.wait(), 120) == 0
        assert codes == [0, 0, 0], [worker.output() for worker in workers]
        total = sum(len(items) for items in sandbox.dataset.truth().deployments.values())
    reads = [json.loads(line) for line in seen.read_text().splitlines()]
    pinned = {p for p, _ in reads if p is not None}
    finished = counts_at_whole_snapshots(lake)
    assert total in finished
    assert pinned <= finished
    assert reads[-1][0] == total
    # The reads were made while the lake was half written: unpinned, it showed that.
    assert any(latest is not None and 0 < latest < total for _, latest in reads)
