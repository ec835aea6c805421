"""One migration for both backends: `{{placeholders}}` filled in per backend, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl.errors import WarehouseError
from etl.warehouse.ddl import render

SQL = Path(__file__).parents[2] / "sql"
SHARED_SINCE = "0006"  # 0001–0005 have lake forms; every later migration serves both


def test_a_duckdb_file_gets_zstd_and_constraints():
    sql = "CREATE TABLE t (k VARCHAR {{primary_key}}, p VARCHAR {{zstd}} NOT NULL, j {{json}});"
    assert render(sql, "duckdb") == (
        "CREATE TABLE t (k VARCHAR PRIMARY KEY, p VARCHAR USING COMPRESSION zstd NOT NULL, j JSON);"
    )


def test_a_lake_gets_neither_compression_nor_constraints_and_varchar_for_json():
    sql = "CREATE TABLE t (k VARCHAR {{primary_key}}, u VARCHAR {{unique}}, j {{json}});"
    assert render(sql, "ducklake") == "CREATE TABLE t (k VARCHAR , u VARCHAR , j VARCHAR);"


def test_sql_without_placeholders_is_unchanged():
    sql = "ALTER TABLE etl_runs ADD COLUMN host VARCHAR; -- {not a placeholder}"
    assert render(sql, "duckdb") == sql
    assert render(sql, "ducklake") == sql


def test_an_unknown_placeholder_is_an_error_naming_it_and_the_migration():
    with pytest.raises(WarehouseError, match=r"0099_x.sql: unknown placeholder \{\{zsdt\}\}"):
        render("p VARCHAR {{zsdt}}", "duckdb", "0099_x.sql")


@pytest.mark.parametrize("backend", ["duckdb", "ducklake"])
def test_every_migration_renders_for_both_backends(backend):
    for path in sorted((SQL / "migrations").glob("*.sql")):
        assert "{{" not in render(path.read_text(), backend, path.name), path.name


def test_no_migration_after_0005_has_a_lake_form():
    lake_forms = [path.stem for path in (SQL / "ducklake" / "migrations").glob("*.sql")]
    assert lake_forms
    assert all(name < SHARED_SINCE for name in lake_forms)
