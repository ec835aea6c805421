from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import duckdb
import polars as pl
import pytest

from etl.config import Stream
from etl.errors import WarehouseError
from etl.normalize import NORMALIZERS, Batch, UnknownFields
from etl.normalize.registry import KEYS, TABLES
from etl.rawjson import encode
from etl.records import Fetched, ScopeComplete, WindowDone
from etl.warehouse import memory_for_records
from etl.warehouse.duckdb_file import connect
from etl.warehouse.merge import merge_batch
from etl.warehouse.migrate import migrate

DATA = Path(__file__).parents[1] / "data"
SQL = Path(__file__).parents[2] / "sql"
NOW = datetime(2026, 11, 23, tzinfo=UTC)


def duckdb_type(dtype: pl.DataType) -> str:
    names = {pl.String: "VARCHAR", pl.Int64: "BIGINT", pl.Boolean: "BOOLEAN", pl.Float64: "DOUBLE"}
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMP WITH TIME ZONE"
    if isinstance(dtype, pl.List):
        return duckdb_type(dtype.inner) + "[]"
    if isinstance(dtype, pl.Struct):
        inner = ", ".join(f"{f.name} {duckdb_type(f.dtype)}" for f in dtype.fields)
        return f"STRUCT({inner})"
    return names[dtype.base_type()]


def test_ddl_matches_the_polars_schemas(warehouse):
    for table, schema in TABLES.items():
        columns = warehouse.execute(f"DESCRIBE {table}").fetchall()
        # Our own small JSON columns (rejected_records.scope) hold Polars strings too.
        actual = [(name, kind.replace("JSON", "VARCHAR")) for name, kind, *_ in columns]
        assert actual == [(n, duckdb_type(t)) for n, t in schema.items()], table


def test_ddl_declares_the_keys_the_merge_keeps_unique():
    migrations = sorted((SQL / "migrations").glob("*.sql"))
    ddl = "".join(path.read_text() for path in migrations)
    for table, key in KEYS.items():
        block = ddl[ddl.index(f"CREATE TABLE {table} (") :].split(");", 1)[0]
        assert f"-- key: ({', '.join(key)})" in block, table


def test_a_batch_repeating_a_key_is_refused_and_writes_nothing(warehouse):
    frames = deployment_frames("r1")
    doubled = {**frames, "deployments": pl.concat([frames["deployments"]] * 2)}
    with pytest.raises(WarehouseError, match="deployments: a batch holds the same key"):
        merge_batch(warehouse, doubled, [], run_id="r1", now=NOW)
    assert set(counts(warehouse).values()) == {0}


def test_migrate_twice_applies_nothing_the_second_time(warehouse):
    assert migrate(warehouse) == []


def deployment_frames(
    run_id: str, pr_flag_keys: list[str] | None = None, first_prs: int | None = None
) -> dict[str, pl.DataFrame]:
    """The example page, normalized.

    With `pr_flag_keys`, its first pull request embeds those flag references; with
    `first_prs`, the first deployment keeps only that many pull requests.
    """
    items = json.loads((DATA / "example-deployments-page1.json").read_text())["items"]
    if pr_flag_keys is not None:
        refs = [
            {"projectKey": "default", "flagKey": key, "referencesAdded": 1, "referencesRemoved": 0}
            for key in pr_flag_keys
        ]
        pr = items[0]["pullRequests"]["items"][0]
        pr["flagReferences"] = {"totalCount": len(refs), "items": refs}
    if first_prs is not None:
        prs = items[0]["pullRequests"]
        prs["items"] = prs["items"][:first_prs]
        prs["totalCount"] = first_prs
    ctx = {"project_key": "default", "environment_key": "production"}
    units = [Fetched(Stream.DEPLOYMENTS, ctx, [encode(item) for item in items])]
    return NORMALIZERS[Stream.DEPLOYMENTS](units, Batch(run_id, NOW, UnknownFields()))


def counts(conn: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def test_merging_the_same_batch_twice_changes_nothing(warehouse):
    merge_batch(warehouse, deployment_frames("r1"), [], run_id="r1", now=NOW)
    first = counts(warehouse)
    merge_batch(warehouse, deployment_frames("r2"), [], run_id="r2", now=NOW)
    assert counts(warehouse) == first
    assert first["deployments"] == 2


def test_pull_request_flag_references_follow_the_latest_copy_of_the_pull_request(warehouse):
    merge_batch(warehouse, deployment_frames("r1", ["a", "b"]), [], run_id="r1", now=NOW)
    merge_batch(warehouse, deployment_frames("r2", ["b"]), [], run_id="r2", now=NOW)
    assert warehouse.execute("SELECT flag_key FROM pull_request_flag_references").fetchall() == [
        ("b",)
    ]
    merge_batch(warehouse, deployment_frames("r3", []), [], run_id="r3", now=NOW)
    assert counts(warehouse)["pull_request_flag_references"] == 0


def test_a_deployment_whose_pull_requests_shrank_loses_the_stale_links(warehouse):
    merge_batch(warehouse, deployment_frames("r1"), [], run_id="r1", now=NOW)
    before = counts(warehouse)["deployment_pull_requests"]
    merge_batch(warehouse, deployment_frames("r2", first_prs=1), [], run_id="r2", now=NOW)
    after = counts(warehouse)
    assert after["deployment_pull_requests"] == before - 1
    assert after["deployments"] == 2


def test_a_failed_batch_leaves_nothing_behind(warehouse):
    frames = deployment_frames("r1")
    frames["deployments"] = frames["deployments"].with_columns(pl.lit(None).alias("status"))
    with pytest.raises(WarehouseError, match="nothing of it was kept"):
        merge_batch(warehouse, frames, [], run_id="r1", now=NOW)
    assert sum(counts(warehouse).values()) == 0


AT = {"run_id": "r1", "now": NOW}


def padded(deployment: pl.DataFrame, prefix: str, rows: int, kb: int) -> pl.DataFrame:
    """`rows` copies of one deployment row, each with ~`kb` KB of distinct JSON in `_raw`."""
    return pl.concat(
        deployment.with_columns(
            pl.lit(f"{prefix}-{i}").alias("deployment_id"),
            pl.lit(json.dumps({"pad": f"{prefix}{i:05d}" * (kb * 1000 // 7)})).alias("_raw"),
        )
        for i in range(rows)
    )


def test_a_commit_that_runs_out_of_memory_is_reported_and_keeps_nothing(tmp_path):
    # DuckDB ends a transaction whose COMMIT failed; the merge must still report the cause.
    conn = connect(
        tmp_path / "w.duckdb", memory_limit="32MB", checkpoint_threshold="1GB", threads=1
    )
    migrate(conn)
    one = deployment_frames("r1")["deployments"].head(1)
    big = padded(one, "d", 300, kb=210)  # 63 MB: inserted by spilling, too much to log at COMMIT
    try:
        with pytest.raises(WarehouseError, match=r"loading a batch failed .* Failed to commit"):
            merge_batch(conn, {"deployments": big}, [], run_id="r1", now=NOW)
        assert counts(conn)["deployments"] == 0
        merge_batch(conn, deployment_frames("r2"), [], run_id="r2", now=NOW)  # still usable
        assert counts(conn)["deployments"] == 2
    finally:
        conn.close()


@pytest.mark.parametrize("row_group_size", [None, 16_384])
def test_a_checkpoint_that_runs_out_of_memory_after_a_commit_keeps_the_batch(
    tmp_path, row_group_size
):
    # DuckDB commits the batch, then fails the automatic checkpoint and closes the file to
    # every statement: the error must say the batch was kept, and reopening must find it.
    path = tmp_path / "w.duckdb"
    conn = connect(
        path,
        memory_limit="32MB",
        checkpoint_threshold="1MB",
        threads=1,
        row_group_size=row_group_size,
    )
    migrate(conn)
    one = deployment_frames("r1")["deployments"].head(1)
    committed = 0
    try:
        with pytest.raises(WarehouseError) as failure:  # noqa: PT012 (merges until one fails)
            for batch in range(20):
                merge_batch(conn, {"deployments": padded(one, f"b{batch}", 50, kb=35)}, [], **AT)
                committed += 50
    finally:
        conn.close()
    message = str(failure.value)
    assert message.startswith("a batch was committed, but the checkpoint after it failed")
    assert "raise [warehouse] memory_limit" in message
    reopened = connect(path)
    try:
        assert counts(reopened)["deployments"] == committed + 50
    finally:
        reopened.close()


def test_completed_listing_soft_deletes_rows_it_no_longer_contains(warehouse):
    def policies(run_id: str, keys: list[str]) -> dict[str, pl.DataFrame]:
        items = [
            {"_id": k, "key": k, "name": k, "rank": 1, "releaseMethod": "guarded-release"}
            for k in keys
        ]
        return NORMALIZERS[Stream.RELEASE_POLICIES](
            [Fetched(Stream.RELEASE_POLICIES, {"project_key": "p"}, [encode(i) for i in items])],
            Batch(run_id, NOW, UnknownFields()),
        )

    mark = ScopeComplete(Stream.RELEASE_POLICIES, {"project_key": "p"})
    merge_batch(warehouse, policies("r1", ["a", "b"]), [mark], run_id="r1", now=NOW)
    merge_batch(warehouse, policies("r2", ["a"]), [mark], run_id="r2", now=NOW)
    rows = warehouse.execute(
        "SELECT policy_id, _deleted_at IS NOT NULL FROM release_policies ORDER BY 1"
    ).fetchall()
    assert rows == [("a", False), ("b", True)]
    merge_batch(warehouse, policies("r3", ["a", "b"]), [mark], run_id="r3", now=NOW)
    assert warehouse.execute(
        "SELECT count(*) FROM release_policies WHERE _deleted_at IS NULL"
    ).fetchone() == (2,)


@pytest.mark.parametrize("row_group_size", [None, 16_384])
def test_second_writer_gets_a_clear_lock_error(tmp_path, row_group_size):
    path = tmp_path / "w.duckdb"
    import subprocess
    import sys

    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb,time; c=duckdb.connect({str(path)!r}); "
         "print('ready', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(WarehouseError, match="in use by another process"):
            connect(path, row_group_size=row_group_size)
    finally:
        holder.kill()
        holder.communicate()


def test_a_writer_attaches_the_file_with_its_row_group_size(tmp_path):
    path = tmp_path / "it's a warehouse.duckdb"  # the quote must survive the ATTACH
    conn = connect(path, row_group_size=2_048)
    migrate(conn)
    conn.execute("CREATE TABLE numbers AS SELECT range AS n FROM range(10000)")
    conn.execute("CHECKPOINT")
    largest = conn.execute("SELECT max(count) FROM pragma_storage_info('numbers')").fetchone()
    spills_to = conn.execute("SELECT current_setting('temp_directory')").fetchone()
    conn.close()
    assert largest == (2_048,)
    assert spills_to == (f"{path}.tmp",)  # beside the file, as for a plain connection
    reader = connect(path, read_only=True)
    try:
        assert reader.execute("SELECT count(*) FROM numbers").fetchone() == (10_000,)
        assert reader.execute("SELECT count(*) FROM etl_runs").fetchone() == (0,)
    finally:
        reader.close()


def storage_version(conn: duckdb.DuckDBPyConnection) -> str:
    tags = conn.execute(
        "SELECT tags FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchone()
    assert tags is not None
    return str(tags[0]["storage_version"])


def test_payloads_that_grow_with_history_are_stored_with_zstd(warehouse):
    merge_batch(warehouse, deployment_frames("r1"), [], run_id="r1", now=NOW)
    warehouse.execute("CHECKPOINT")
    compression = warehouse.execute(
        "SELECT column_name, list(DISTINCT compression) FROM pragma_storage_info('deployments') "
        "WHERE column_name IN ('_raw', 'metadata') AND segment_type = 'VARCHAR' GROUP BY ALL"
    ).fetchall()
    assert sorted(compression) == [("_raw", ["ZSTD"]), ("metadata", ["ZSTD"])]


def test_the_zstd_migration_keeps_every_payload_and_its_not_null(tmp_path):
    earlier = tmp_path / "sql"
    (earlier / "migrations").mkdir(parents=True)
    (earlier / "views").mkdir()
    for path in sorted((SQL / "migrations").glob("*.sql")):
        if path.name < "0005":
            (earlier / "migrations" / path.name).write_text(path.read_text())
    conn = connect(tmp_path / "w.duckdb")
    try:
        migrate(conn, earlier)
        deployments = {"deployments": deployment_frames("r1")["deployments"]}  # 0005's table
        merge_batch(conn, deployments, [], run_id="r1", now=NOW)
        everything = "SELECT * FROM deployments ORDER BY deployment_id"
        before = conn.execute(everything).fetchall()
        assert migrate(conn)[0] == "0005_payload_zstd"  # and any later ones
        assert conn.execute(everything).fetchall() == before  # same columns, same order
        with pytest.raises(duckdb.ConstraintException, match="_raw"):
            conn.execute("UPDATE deployments SET _raw = NULL")
    finally:
        conn.close()


def test_a_writer_upgrades_an_older_file_to_the_storage_version_zstd_needs(tmp_path):
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as old:  # DuckDB's default for a new file: v1.0.0
        assert storage_version(old) == "v1.0.0+"
        old.execute("CREATE TABLE kept AS SELECT 42 AS answer")
    conn = connect(path)
    try:
        assert storage_version(conn) == "v1.3.0+"
        assert conn.execute("SELECT answer FROM kept").fetchone() == (42,)
    finally:
        conn.close()


def test_a_writer_leaves_a_newer_file_in_its_storage_version(tmp_path):
    path = tmp_path / "w.duckdb"
    with duckdb.connect() as newer:
        newer.execute(f"ATTACH '{path}' AS w (STORAGE_VERSION 'v1.5.0')")
    conn = connect(path)
    try:
        assert storage_version(conn) == "v1.5.0+"
    finally:
        conn.close()


def test_a_batch_marks_exactly_its_windows_done(warehouse):
    days = [datetime(2026, 11, day, tzinfo=UTC) for day in (1, 2, 3)]
    for env in ("staging", "production"):
        for start, end in pairwise(days):
            warehouse.execute(
                "INSERT INTO sync_windows VALUES ('deployments', 'p', ?, ?, ?, 'r0', NULL, NULL)",
                [env, start, end],
            )
    done = [WindowDone("p", "staging", days[0], days[1]), WindowDone("p", "production", *days[1:])]
    merge_batch(warehouse, deployment_frames("r1"), done, run_id="r1", now=NOW)
    rows = warehouse.execute(
        "SELECT environment_key, from_at, done_run_id FROM sync_windows ORDER BY ALL"
    ).fetchall()
    assert [(env, start.day, run) for env, start, run in rows] == [
        ("production", 1, None),
        ("production", 2, "r1"),
        ("staging", 1, "r1"),
        ("staging", 2, None),
    ]


def test_duckdb_memory_for_records_covers_what_their_checkpoints_were_measured_to_need():
    # Records of 20 / 40 / 80 KB checkpointed at 64 / 96 / 192 MB (and failed at 48 / 80 / 160).
    for largest, measured_need in [(20_000, 64e6), (40_000, 96e6), (80_000, 192e6)]:
        assert memory_for_records(largest) >= measured_need
    assert memory_for_records(3_000) < 64e6  # the sandbox's deployments: the default suffices


def test_duckdb_memory_for_records_stays_within_duckdbs_own_default_limit():
    machine = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert memory_for_records(100_000_000) <= 0.8 * machine
