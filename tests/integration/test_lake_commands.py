"""`etl lake snapshot`, `etl lake maintain` and `etl doctor` on a DuckLake, as processes."""

from __future__ import annotations

import json

from tests.integration.lakeprocs import environment, machine, start, sync_args
from tests.integration.warehouse_truth import warehouse_differences


def project_keys(sandbox) -> list[str]:
    return [project["key"] for project in sandbox.dataset.projects]


def run_snapshots(lake) -> list[tuple[str, int, bool]]:
    from etl.warehouse.ducklake import DuckLake

    conn = DuckLake(lake.target, lake.settings()).connect(read_only=True)
    try:
        return conn.execute(
            "SELECT run_id, snapshot_id, snapshot_whole FROM etl_runs ORDER BY started_at"
        ).fetchall()
    finally:
        conn.close()


async def test_lake_snapshot_prints_the_snapshot_the_last_whole_run_recorded(
    sandbox_factory, lake, tmp_path
):
    async with sandbox_factory(scale="tiny") as sandbox:
        env = environment(lake, sandbox)
        home = machine(tmp_path, "worker", lake)
        synced = await start(home, sync_args(lake, sandbox), env)
        assert await synced.wait() == 0, synced.output()
    [(run_id, snapshot_id, whole)] = run_snapshots(lake)
    assert whole is True
    shown = await start(home, ["lake", "snapshot", "--db", lake.target, "--format", "json"], env)
    assert await shown.wait() == 0, shown.output()
    printed = json.loads((home / "out.txt").read_text())
    assert (printed["snapshot_id"], printed["run_id"]) == (snapshot_id, run_id)
    assert printed["made_at"]


async def test_maintain_during_a_sync_keeps_the_lake_equal_to_the_truth_with_fewer_files(
    sandbox_factory, s3_lake, tmp_path
):
    lake = s3_lake
    async with sandbox_factory(scale="small", latency_ms=10) as sandbox:
        env = environment(lake, sandbox)
        first, *rest = project_keys(sandbox)
        # Small batches: many small files for maintenance to merge.
        home = machine(tmp_path, "first", lake, batch=50)
        synced = await start(home, sync_args(lake, sandbox, "--project", first), env)
        assert await synced.wait() == 0, synced.output()
        others = machine(tmp_path, "others", lake, batch=50)
        args = sync_args(lake, sandbox, *(flag for key in rest for flag in ("--project", key)))
        syncing = await start(others, args, env)
        maintainer = machine(tmp_path, "maintainer", lake)
        rounds = []
        while syncing.process.returncode is None or not rounds:
            maintained = await start(
                maintainer, ["lake", "maintain", "--db", lake.target, "--keep-days", "0"], env
            )
            assert await maintained.wait() == 0, maintained.output()
            rounds.append((maintainer / "out.txt").read_text())
        assert await syncing.wait() == 0, syncing.output()
        assert warehouse_differences(lake.target, sandbox.dataset.truth(), lake.settings()) == []
        last = await start(
            maintainer, ["lake", "maintain", "--db", lake.target, "--keep-days", "0"], env
        )
        assert await last.wait() == 0, last.output()
        assert warehouse_differences(lake.target, sandbox.dataset.truth(), lake.settings()) == []
    # "files stored 123 → 45": the first round (after 1 of 3 projects) merged and deleted.
    before, after = rounds[0].split("files stored ")[1].split(",")[0].split(" → ")
    assert int(after) < int(before), rounds[0]
    assert {key for key in lake.store.objects(lake.bucket) if ".etl-doctor" in key} == set()


async def test_doctor_on_an_s3_lake_checks_catalog_data_path_extensions_and_credentials(
    sandbox_factory, s3_lake, tmp_path
):
    lake = s3_lake
    async with sandbox_factory(scale="tiny") as sandbox:
        env = environment(lake, sandbox)
        config = lake.config(f'data_path = "{lake.data}"')
        home, keyless_home = tmp_path / "doctor", tmp_path / "keyless"
        for directory in (home, keyless_home):
            directory.mkdir()
            (directory / "config.toml").write_text(config)
        args = ["doctor", "--db", lake.target, "--base-url", sandbox.url, "--format", "json"]
        checked = await start(home, args, env)
        assert await checked.wait() == 0, checked.output()
        rows = {row["name"]: row for row in json.loads((home / "out.txt").read_text())}
        without_keys = {
            k: v for k, v in env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        }
        keyless = await start(keyless_home, args, without_keys)
        assert await keyless.wait() == 1
    for name in ("lake extensions", "lake credentials", "lake catalog", "lake data path writable"):
        assert rows[name]["outcome"] == "ok", rows
    assert "no lake yet" in rows["lake catalog"]["detail"]
    assert "AWS_ACCESS_KEY_ID" in rows["lake credentials"]["detail"]
    assert "no S3 credentials" in keyless.output()
    output = checked.output() + keyless.output()
    assert lake.store.secret not in output and lake.store.key_id not in output
    assert lake.store.objects(lake.bucket) == []
