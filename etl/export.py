"""`etl export`: every table and view of the published warehouse as Parquet, for file readers.

The export is written into a hidden sibling of `--out` and then swapped in with one rename
(`renameat2(RENAME_EXCHANGE)` where the filesystem has it), so a reader of the directory
sees the previous complete export or the new complete one, never a half-written one. It
reads the published warehouse through `open_reader`, like every reader: one consistent
end-of-run state, whatever a sync is doing meanwhile.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson

from etl.config import WarehouseSettings
from etl.errors import ConfigError, WarehouseError
from etl.warehouse import open_reader
from etl.warehouse.files import fsync_directory
from etl.warehouse.sqlutil import ident

MANIFEST = "manifest.json"
# Tables split into one directory per month of a timestamp column (Hive style:
# `deployments/month=2026-11/…`): the one table that grows with history, and the one a
# file reader most often reads a range of.
PARTITIONED = {"deployments": "started_at"}
PARTITION_COLUMN = "month"
# Bookkeeping of the migrations, not data.
SKIPPED = {"schema_migrations"}
# Types file readers would not read back as they are, and what they are written as. DuckDB
# writes 128-bit integers (sums of counts in the views) as DOUBLE: every value they hold fits
# a BIGINT, and one that did not would fail the export instead of losing digits. JSON goes
# out as Parquet's JSON type, which Polars reads as bytes: plain text reads as text anywhere.
# An INTERVAL (Parquet's 12-byte interval, which Polars cannot read) goes out as seconds.
NARROWED = {"HUGEINT": "BIGINT", "UHUGEINT": "UBIGINT", "JSON": "VARCHAR", "INTERVAL": "DOUBLE"}


@dataclass(frozen=True)
class Exported:
    """One table or view written: where, how many rows, its columns as written."""

    name: str
    kind: str
    rows: int
    path: str
    columns: list[dict[str, str]]


def export_parquet(
    db: Path, out: Path, tables: Sequence[str] = (), settings: WarehouseSettings | None = None
) -> dict[str, Any]:
    """Write every table and view (or only `tables`) of `db` as Parquet under `out`.

    Returns:
        The manifest, as written to `out/manifest.json`.

    Raises:
        ConfigError: an unknown `--table`, or `out` is a directory that is not an export.
        WarehouseError: no warehouse, or DuckDB failed to write.
    """
    _check_target(out)
    conn = open_reader(db, settings)
    try:
        objects = _objects(conn)
        chosen = list(tables) or list(objects)
        unknown = [name for name in chosen if name not in objects]
        if unknown:
            raise ConfigError(
                f"--table: no table or view {', '.join(map(repr, unknown))} "
                f"(one of: {', '.join(objects)})"
            )
        staging = out.parent / f".{out.name}.export-{os.getpid()}"
        try:
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            exported = [_write(conn, name, objects[name], staging) for name in chosen]
            manifest = _manifest(conn, db, exported)
            (staging / MANIFEST).write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
            _swap_in(staging, out)
        except OSError as exc:
            raise WarehouseError(f"--out {out}: cannot write the export: {exc.strerror}") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    finally:
        conn.close()
    return manifest


def _check_target(out: Path) -> None:
    """Refuse to replace a directory that holds something else than an earlier export."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise ConfigError(
            f"--out {out}: a directory that is not an etl export (no {MANIFEST}); "
            "name a new or empty directory"
        )


def _objects(conn: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The warehouse's tables and views, in name order: name → "table" or "view"."""
    rows = conn.execute(
        "SELECT table_name, table_type FROM information_schema.tables "
        "WHERE table_catalog = current_database() AND table_schema = 'main' "
        "ORDER BY table_name"
    ).fetchall()
    return {
        name: "view" if kind == "VIEW" else "table" for name, kind in rows if name not in SKIPPED
    }


def _write(conn: duckdb.DuckDBPyConnection, name: str, kind: str, staging: Path) -> Exported:
    """COPY one table or view to Parquet (zstd); partitioned by month where configured."""
    options = "FORMAT parquet, COMPRESSION zstd"
    columns: list[dict[str, str]] = []
    select: list[str] = []
    for column_name, column_type, *_ in conn.execute(f"DESCRIBE {ident(name)}").fetchall():
        written = NARROWED.get(column_type, column_type)
        quoted = '"' + column_name.replace('"', '""') + '"'
        columns.append({"name": column_name, "type": written})
        if written == column_type:
            select.append(quoted)
            continue
        columns[-1]["warehouse_type"] = column_type
        if column_type == "INTERVAL":
            columns[-1]["unit"] = "seconds"
            select.append(f"epoch({quoted}) AS {quoted}")
        else:
            select.append(f"{quoted}::{written} AS {quoted}")
    query = f"SELECT {', '.join(select)} FROM {ident(name)}"
    if name in PARTITIONED:
        month = f"strftime({ident(PARTITIONED[name])} AT TIME ZONE 'UTC', '%Y-%m')"
        query = f"SELECT *, {month} AS {PARTITION_COLUMN} FROM ({query})"
        target = staging / name
        options += f", PARTITION_BY ({PARTITION_COLUMN})"
        relative = f"{name}/"
    else:
        target = staging / f"{name}.parquet"
        relative = f"{name}.parquet"
    quoted = str(target).replace("'", "''")
    try:
        row = conn.execute(f"COPY ({query}) TO '{quoted}' ({options})").fetchone()
    except duckdb.Error as exc:
        reason = str(exc).splitlines()[0]
        raise WarehouseError(f"exporting {name} failed: {reason}") from None
    rows = int(row[0]) if row else 0
    if name in PARTITIONED and rows == 0:
        target.mkdir(exist_ok=True)  # an empty table is still a directory readers can list
    return Exported(name, kind, rows, relative, columns)


def _manifest(
    conn: duckdb.DuckDBPyConnection, db: Path, exported: Sequence[Exported]
) -> dict[str, Any]:
    """What was exported, from which run: tables, row counts, column types."""
    latest = conn.execute(
        "SELECT run_id, status, CAST(ended_at AS VARCHAR) FROM etl_runs "
        "WHERE status IN ('succeeded', 'partial') ORDER BY started_at DESC LIMIT 1"
    ).fetchone()
    run = {"run_id": latest[0], "status": latest[1], "ended_at": latest[2]} if latest else None
    tables: dict[str, Any] = {}
    for item in exported:
        entry: dict[str, Any] = {
            "kind": item.kind,
            "rows": item.rows,
            "path": item.path,
            "columns": item.columns,
        }
        if item.name in PARTITIONED:
            entry["partitioned_by"] = {
                PARTITION_COLUMN: f"month of {PARTITIONED[item.name]} (UTC), YYYY-MM"
            }
        tables[item.name] = entry
    return {
        "format": "parquet",
        "compression": "zstd",
        "exported_at": datetime.now(UTC),
        "warehouse": str(db),
        "run": run,
        "tables": tables,
    }


def _swap_in(staging: Path, out: Path) -> None:
    """Put the finished export at `out` in one rename.

    The export it replaces is kept as `.<out>.previous` until the next export: a reader
    that was listing or reading it as the swap happened can finish there, instead of
    watching its files disappear.
    """
    previous = out.parent / f".{out.name}.previous"
    shutil.rmtree(previous, ignore_errors=True)
    if not out.exists():
        os.rename(staging, out)
    elif _exchange(staging, out):
        os.rename(staging, previous)
    else:
        # No atomic exchange on this filesystem: `out` is briefly absent, never half-written.
        os.rename(out, previous)
        os.rename(staging, out)
    fsync_directory(out.parent)


_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2); False where that is not available."""
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    done = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if done == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))
