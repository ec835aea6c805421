"""Small SQL helpers every backend and `etl.state` share: Arrow by name, safe rollback."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import duckdb
import pyarrow as pa

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


def ident(name: str) -> str:
    """Guard for identifiers spliced into SQL: they come only from our fixed schema."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"unexpected identifier {name!r}")
    return name


@contextlib.contextmanager
def registered(conn: duckdb.DuckDBPyConnection, name: str, rows: pa.Table) -> Iterator[None]:
    """`rows` readable in SQL as `name` for the block (DuckDB scans the Arrow data in place)."""
    conn.register(name, rows)
    try:
        yield
    finally:
        conn.unregister(name)


def rollback(conn: duckdb.DuckDBPyConnection) -> None:
    """Roll back the open transaction, if there still is one.

    A COMMIT that fails (DuckDB out of memory while writing its log) has already ended the
    transaction, and a failed checkpoint closes the database to every statement; a ROLLBACK
    then raises, and would hide the error that explains the failure.
    """
    with contextlib.suppress(duckdb.Error):
        conn.execute("ROLLBACK")
