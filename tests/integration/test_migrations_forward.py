"""Migrations forward: a warehouse made by any earlier released schema migrates to the
current one without losing a row.

`tests/data/warehouse-first-release.duckdb.gz` was written by the first release's own code
(commit f3547a7: migrations 0001 and 0002 as they were then, with PRIMARY KEY constraints)
syncing the tiny sandbox (seed 42, now_ms 1767225600000, `--since 2025-01-01`). The later
released schemas differ from today's files only by the migrations added since, so they are
rebuilt here from today's files up to each one and filled with the first release's rows.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import duckdb
import pytest

from etl.resources import sql_dir
from etl.warehouse import open_warehouse
from etl.warehouse.migrate import migrate

FIRST_RELEASE = Path(__file__).parents[1] / "data" / "warehouse-first-release.duckdb.gz"
MIGRATIONS = sorted(path.stem for path in (sql_dir() / "migrations").glob("*.sql"))


def unpacked(tmp_path: Path) -> Path:
    db = tmp_path / "first-release.duckdb"
    with gzip.open(FIRST_RELEASE) as packed, db.open("wb") as out:
        shutil.copyfileobj(packed, out)
    return db


def tables(conn: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """Every base table (bookkeeping aside) and its columns, from the catalog."""
    out: dict[str, list[str]] = {}
    for table, column in conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "JOIN information_schema.tables USING (table_catalog, table_schema, table_name) "
        "WHERE table_type = 'BASE TABLE' AND table_name <> 'schema_migrations' "
        "AND table_catalog = current_database() ORDER BY table_name, ordinal_position"
    ).fetchall():
        out.setdefault(table, []).append(column)
    return out


def rows_as_text(db: Path, columns: dict[str, list[str]]) -> dict[str, list[tuple[str, ...]]]:
    """The rows of `columns`' tables, every value as text (types may change, values not)."""
    with duckdb.connect(str(db), read_only=True) as conn:
        return {
            table: conn.execute(
                f"SELECT {', '.join(f'{c}::VARCHAR' for c in cols)} FROM {table} ORDER BY ALL"
            ).fetchall()
            for table, cols in columns.items()
        }


def migrate_to_current(db: Path) -> list[str]:
    writer = open_warehouse(db).writer()
    try:
        applied = writer.migrate()
        writer.publish()  # the sync migrates its working copy; readers see what it publishes
        return applied
    finally:
        writer.close()


def test_the_first_release_warehouse_migrates_to_current_without_losing_a_row(tmp_path):
    db = unpacked(tmp_path)
    with duckdb.connect(str(db), read_only=True) as conn:
        old_columns = tables(conn)
    before = rows_as_text(db, old_columns)
    assert sum(map(len, before.values())) > 500  # a fixture with rows in it

    applied = migrate_to_current(db)

    assert applied == MIGRATIONS[2:]
    assert rows_as_text(db, old_columns) == before
    assert migrate_to_current(db) == []  # and it stays current


@pytest.mark.parametrize("last", MIGRATIONS[1:-1])
def test_a_warehouse_of_each_later_release_migrates_without_losing_a_row(tmp_path, last):
    released = tmp_path / "sql"
    (released / "migrations").mkdir(parents=True)
    (released / "views").mkdir()
    for name in MIGRATIONS[: MIGRATIONS.index(last) + 1]:
        shutil.copy(sql_dir() / "migrations" / f"{name}.sql", released / "migrations")
    db = tmp_path / "warehouse.duckdb"
    source = unpacked(tmp_path)
    with duckdb.connect(str(source), read_only=True) as conn:
        first_release_tables = tables(conn)
    with duckdb.connect(str(db)) as conn:
        migrate(conn, released)
        conn.execute(f"ATTACH '{source}' AS first_release (READ_ONLY)")
        released_tables = tables(conn)
        for table in released_tables.keys() & first_release_tables.keys():
            # From 0009 on, windows name their stream: the first release's are deployments'.
            stream = (
                ", 'deployments' AS stream"
                if "stream" in released_tables[table]
                and "stream" not in first_release_tables[table]
                else ""
            )
            conn.execute(f"INSERT INTO {table} BY NAME SELECT *{stream} FROM first_release.{table}")
        columns = tables(conn)
    before = rows_as_text(db, columns)
    assert before["deployments"]

    applied = migrate_to_current(db)

    assert applied == MIGRATIONS[MIGRATIONS.index(last) + 1 :]
    assert rows_as_text(db, columns) == before
