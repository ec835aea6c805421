"""`etl export`: the published warehouse as Parquet that DuckDB and Polars read back as it was."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import duckdb
import polars as pl
import pytest

from etl.export import MANIFEST, PARTITION_COLUMN, export_parquet
from etl.sync import sync
from tests.integration.test_cli import env_with, etl


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    """A synced warehouse (tiny scale), shared by the tests that only read it."""
    import asyncio

    from etl.config import load_settings
    from etl.sandbox import SandboxConfig
    from tests.integration.conftest import serve

    db = tmp_path_factory.mktemp("export") / "warehouse.duckdb"

    async def run() -> None:
        async with serve(SandboxConfig(scale="tiny")) as sandbox:
            settings = load_settings(
                None,
                {"api.base_url": sandbox.url, "warehouse.path": str(db),
                 "limits.requests_per_second": 2000.0},
                {"LD_API_TOKEN": sandbox.config.token},
            )  # fmt: skip
            assert (await sync(settings)).status == "succeeded"

    asyncio.run(run())
    return db


def parquet_source(out: Path, entry: dict) -> str:
    if entry["path"].endswith("/"):
        return f"read_parquet('{out / entry['path']}/**/*.parquet', hive_partitioning = true)"
    return f"read_parquet('{out / entry['path']}')"


def test_duckdb_reads_back_every_table_and_view_with_its_counts_and_types(warehouse, tmp_path):
    out = tmp_path / "export"
    manifest = export_parquet(warehouse, out)
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        objects = {row[0] for row in conn.execute("SHOW TABLES").fetchall()}
        assert set(manifest["tables"]) == objects - {"schema_migrations"}
        for name, entry in manifest["tables"].items():
            (count,) = conn.execute(f"SELECT count(*) FROM {name}").fetchone()
            assert entry["rows"] == count, name
            source = parquet_source(out, entry)
            (back,) = conn.execute(f"SELECT count(*) FROM {source}").fetchone()
            assert back == count, name
            types = conn.execute(f"DESCRIBE {name}").fetchall()
            partitioned = entry["path"].endswith("/")
            columns = f"* EXCLUDE ({PARTITION_COLUMN})" if partitioned else "*"
            read = conn.execute(f"DESCRIBE SELECT {columns} FROM {source}")
            written = [(c["name"], c["type"]) for c in entry["columns"]]
            assert [row[:2] for row in read.fetchall()] == written, name
            assert [(c["name"], c.get("warehouse_type", c["type"])) for c in entry["columns"]] == [
                row[:2] for row in types
            ]
            narrowed = {c["warehouse_type"] for c in entry["columns"] if "warehouse_type" in c}
            assert narrowed <= {"HUGEINT", "JSON", "INTERVAL"}, name


def test_polars_reads_back_every_table_and_view_with_its_counts_and_types(warehouse, tmp_path):
    out = tmp_path / "export"
    manifest = export_parquet(warehouse, out)
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")  # Parquet's UTC timestamps read back as "UTC"
        for name, entry in manifest["tables"].items():
            written = ", ".join(
                f'epoch("{c["name"]}") AS "{c["name"]}"' if c.get("unit") == "seconds"
                else f'"{c["name"]}"::{c["type"]} AS "{c["name"]}"' if "warehouse_type" in c
                else f'"{c["name"]}"'
                for c in entry["columns"]
            )  # fmt: skip
            query = f"SELECT {written} FROM {name}"
            expected = pl.from_arrow(conn.execute(query).to_arrow_table())
            if entry["path"].endswith("/"):
                back = pl.scan_parquet(out / entry["path"], hive_partitioning=True).collect()
                back = back.drop(PARTITION_COLUMN)
            else:
                back = pl.read_parquet(out / entry["path"])
            assert back.height == entry["rows"] == expected.height, name
            assert back.schema == expected.schema, name


def test_the_manifest_names_the_run_and_deployments_are_split_by_month(warehouse, tmp_path):
    out = tmp_path / "export"
    export_parquet(warehouse, out, ["deployments", "etl_runs"])
    manifest = json.loads((out / MANIFEST).read_text())
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        (run_id,) = conn.execute("SELECT run_id FROM etl_runs").fetchone()
    assert manifest["run"]["run_id"] == run_id and manifest["compression"] == "zstd"
    assert set(manifest["tables"]) == {"deployments", "etl_runs"}
    months = sorted(p.name for p in (out / "deployments").iterdir())
    assert months and all(m.startswith(f"{PARTITION_COLUMN}=20") for m in months)


def test_a_reader_of_the_directory_never_sees_a_half_written_export(warehouse, tmp_path):
    out = tmp_path / "export"
    export_parquet(warehouse, out)
    complete = sorted(os.listdir(out))
    looks = 0
    other: list[list[str]] = []
    stop = threading.Event()

    def watch() -> None:
        nonlocal looks
        while not stop.is_set():
            listing = sorted(os.listdir(out))
            looks += 1
            if listing != complete:
                other.append(listing)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for _ in range(3):
            export_parquet(warehouse, out)
    finally:
        stop.set()
        watcher.join()
    assert looks > 0 and other == []
    # No staging left behind; the export before the last one stays for its late readers.
    assert sorted(p.name for p in tmp_path.iterdir()) == [".export.previous", "export"]


async def test_export_command_and_its_one_line_refusals(warehouse, tmp_path):
    out = tmp_path / "export"
    code, text = await etl("export", "--db", str(warehouse), "--out", str(out), env=env_with(None))
    assert code == 0 and "exported" in text and (out / MANIFEST).is_file()
    code, text = await etl(
        "export", "--db", str(warehouse), "--out", str(out), "--table", "nope",
        env=env_with(None),
    )  # fmt: skip
    assert code == 2 and text.startswith("etl: error: --table") and "Traceback" not in text
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    code, text = await etl("export", "--db", str(warehouse), "--out", str(mine), env=env_with(None))
    assert code == 2 and "not an etl export" in text
    assert (mine / "notes.txt").read_text() == "keep me"
