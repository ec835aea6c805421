"""The warehouse: where the sync writes and every reader reads, behind one small interface.

A backend is chosen by the `warehouse.path` / `--db` string (`open_warehouse`): a DuckDB file
(`duckdb_file`), or a DuckLake on PostgreSQL (`ducklake:postgres:<conninfo>`, `ducklake`) that
many syncs write at once. The
shared SQL (merge, migrations) needs no constraints and runs on either; what differs per
backend (ATTACH options, what publishing means) stays in the backend's module.

The sync holds one `Writer` per run and calls `publish()` only when the run succeeded or was
partial, so readers see end-of-run states only. Every reader opens the warehouse through
`open_reader`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol, TypeVar

import duckdb

from etl.config import WarehouseSettings
from etl.records import Mark
from etl.warehouse.memory import memory_for_records, set_memory_limit
from etl.warehouse.merge import Staged, duplicate_keys, stage

__all__ = [
    "Staged",
    "Warehouse",
    "Writer",
    "duplicate_keys",
    "memory_for_records",
    "open_reader",
    "open_warehouse",
    "set_memory_limit",
    "stage",
]

T = TypeVar("T")


class Writer(Protocol):
    """The sync's exclusive session on a warehouse: one per run, always closed."""

    conn: duckdb.DuckDBPyConnection
    """The warehouse is its default catalog (unqualified names resolve to it)."""

    def migrate(self) -> list[str]:
        """Create or upgrade the tables and (re)create the views; the migrations applied."""
        ...

    def merge_batch(
        self, staged: Staged, marks: Sequence[Mark], *, run_id: str, now: datetime
    ) -> None:
        """Upsert a batch and apply its marks in one transaction (WarehouseError if not)."""
        ...

    def publish(self, run_id: str | None = None) -> None:
        """Make everything committed so far what readers see; the connection stays usable.

        `run_id`: the run that just ended (a lake records the snapshot it ended on).
        """
        ...

    def retrying(self, work: Callable[[duckdb.DuckDBPyConnection], T], what: str) -> T:
        """`work(conn)` (whole transactions), again if it lost a race with a writer.

        Each try is handed the connection of that moment: a lake writer replaces an instance
        DuckDB invalidated, and a connection bound before the first try would stay the dead
        one. A backend with one writer at a time just runs it.
        """
        ...

    def close(self) -> None:
        """End the session (idempotent)."""
        ...


class Warehouse(Protocol):
    """One backend, chosen from the `warehouse.path` / `--db` string."""

    target: str
    """Where it is, safe to print (never a password)."""

    def writer(self) -> Writer:
        """The sync's session; WarehouseError if another sync holds the warehouse."""
        ...

    def reader(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection to what was last published (WarehouseError if nothing)."""
        ...


def open_warehouse(target: str | Path, settings: WarehouseSettings | None = None) -> Warehouse:
    """The backend for `target`: a DuckLake for `ducklake:…`, else a DuckDB file path."""
    if str(target).startswith("ducklake:"):
        from etl.warehouse.ducklake import DuckLake

        return DuckLake(target, settings)
    from etl.warehouse.duckdb_file import DuckDBFile

    return DuckDBFile(Path(target), settings)


def open_reader(
    target: str | Path, settings: WarehouseSettings | None = None
) -> duckdb.DuckDBPyConnection:
    """The one way every reader (sql, status, report, export) opens the warehouse."""
    return open_warehouse(target, settings).reader()
