"""The DuckDB file backend: a private working copy, published by copy and atomic rename."""

from __future__ import annotations

import os
import subprocess
import sys

import duckdb
import pytest

from etl.errors import WarehouseError
from etl.warehouse import open_reader, open_warehouse
from etl.warehouse.duckdb_file import DuckDBFile
from etl.warehouse.files import clone_file


def write_projects(db, *names: str, publish: bool = True) -> None:
    writer = open_warehouse(db).writer()
    try:
        writer.migrate()
        for name in names:
            writer.conn.execute(
                "INSERT INTO projects (project_key, project_id, name, _raw, _run_id, _loaded_at) "
                "VALUES (?, ?, ?, '{}', 'r', now())",
                [name, name, name],
            )
        if publish:
            writer.publish()
    finally:
        writer.close()


def project_count(conn: duckdb.DuckDBPyConnection) -> int:
    return conn.execute("SELECT count(*) FROM projects").fetchone()[0]


def test_nothing_is_readable_before_the_first_publish(tmp_path):
    db = tmp_path / "w.duckdb"
    write_projects(db, "a", publish=False)
    with pytest.raises(WarehouseError, match="no warehouse here yet"):
        open_reader(db)


def test_publish_gives_new_readers_the_new_state_and_old_readers_keep_theirs(tmp_path):
    db = tmp_path / "w.duckdb"
    write_projects(db, "a")
    held = open_reader(db)
    write_projects(db, "b", "c")
    assert project_count(held) == 1
    held.close()  # DuckDB shares one database per path within a process while one is open
    with open_reader(db) as fresh:
        assert project_count(fresh) == 3


def test_a_reader_holding_the_published_file_never_blocks_the_writer(tmp_path):
    db = tmp_path / "w.duckdb"
    write_projects(db, "a")
    with open_reader(db):
        write_projects(db, "b")  # would raise "in use by another process" on one shared file


def test_a_second_writer_is_refused_while_one_holds_the_working_copy(tmp_path):
    db = tmp_path / "w.duckdb"
    first = open_warehouse(db).writer()
    try:
        with pytest.raises(WarehouseError, match="another etl sync is writing"):
            open_warehouse(db).writer()
    finally:
        first.close()
    open_warehouse(db).writer().close()  # the lock went with the first writer


def test_a_warehouse_written_in_place_by_an_older_version_is_adopted(tmp_path):
    db = tmp_path / "w.duckdb"
    write_projects(db, "a", "b")
    os.rename(DuckDBFile(db).working, tmp_path / "gone.duckdb")  # as if it never existed
    write_projects(db, "c")
    with open_reader(db) as conn:
        assert project_count(conn) == 3


def test_adoption_keeps_the_commits_in_an_older_versions_unfinished_log(tmp_path):
    db = tmp_path / "w.duckdb"
    write_projects(db, "a")
    (DuckDBFile(db).working).unlink()
    # An older version killed mid-run leaves commits in `w.duckdb.wal` only.
    code = (
        "import duckdb, os, sys; c = duckdb.connect(sys.argv[1]); "
        "c.execute('PRAGMA disable_checkpoint_on_shutdown'); "
        'c.execute("INSERT INTO projects (project_key, project_id, name, _raw, _run_id, '
        "_loaded_at) VALUES ('b', 'b', 'b', '{}', 'r', now())\"); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", code, str(db)], check=True)
    assert db.with_name("w.duckdb.wal").exists()
    write_projects(db, "c")
    with open_reader(db) as conn:
        assert project_count(conn) == 3


def test_a_publish_that_crashed_before_its_rename_leaves_nothing_behind(tmp_path):
    db = tmp_path / "w.duckdb"
    write_projects(db, "a")
    stale = tmp_path / ".w.duckdb.publish-12345.tmp"
    stale.write_bytes(b"half a copy")
    write_projects(db, "b")
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.duckdb", "w.duckdb.sync"]


def test_clone_file_copies_every_byte(tmp_path):
    source = tmp_path / "source"
    source.write_bytes(os.urandom(3 * 2**20 + 17))
    how = clone_file(source, tmp_path / "copy")
    assert how in {"reflink", "kernel", "copy"}
    assert (tmp_path / "copy").read_bytes() == source.read_bytes()
