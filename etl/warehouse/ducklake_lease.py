"""Maintenance holds a lake's writers off: a lease kept in the writer token's one row.

DuckLake's conflict detection does not cover a compaction racing a batch: when
`ducklake_merge_adjacent_files` rewrote a file while a worker's MERGE deleted rows from it
(keys it updated), both committed and the deleted rows lived on in the merged file — a key
held twice (seen in the maintenance-during-sync test). DuckLake also refuses a transaction
that both compacts and changes data, so maintenance cannot take the token like a batch.

So `etl_lake_writer.commits` doubles as a lease. A negative value `-t` means "maintenance
holds the lake until Unix time t". Maintenance takes it in a transaction that bumps the row
(so any batch in flight conflicts and is re-run); every batch reads it inside its own
transaction before writing and, while it is held, rolls back and waits (`Held`). The lease is
renewed between maintenance steps and given back at the end; one left by a killed
maintenance expires after `LEASE_S`. Only tables written by batches alone are compacted (the
ledger's small commits are inlined in the catalog, not files).
"""

from __future__ import annotations

import time

import duckdb

from etl.errors import WarehouseError

LEASE_S = 600
"""How long one maintenance step may hold writers off before its lease lapses."""
POLL_S = 1.0
"""How often a held-off writer looks again."""


class Held(WarehouseError):
    """Maintenance holds the lake: roll back and try again after `POLL_S`."""


def _held_until(conn: duckdb.DuckDBPyConnection) -> float:
    row = conn.execute("SELECT min(commits) FROM etl_lake_writer").fetchone()
    value = int(row[0]) if row and row[0] is not None else 0
    return float(-value) if value < 0 else 0.0


def bump_for_batch(conn: duckdb.DuckDBPyConnection) -> None:
    """Inside a batch's transaction: take the writer token, or raise `Held`."""
    until = _held_until(conn)
    if until > time.time():
        raise Held(f"maintenance holds the lake for up to {until - time.time():.0f} s more")
    conn.execute(
        "UPDATE etl_lake_writer SET commits = CASE WHEN commits < 0 THEN 1 ELSE commits + 1 END"
    )


def take(conn: duckdb.DuckDBPyConnection) -> None:
    """One transaction: hold writers off for `LEASE_S` from now (the holder renews the same way).

    Maintenance runs from one place: a second one would take the lease over.
    """
    conn.execute("BEGIN TRANSACTION")
    conn.execute("UPDATE etl_lake_writer SET commits = ?", [-int(time.time() + LEASE_S)])
    conn.execute("COMMIT")


def give_back(conn: duckdb.DuckDBPyConnection) -> None:
    """One transaction: let writers write again."""
    conn.execute("BEGIN TRANSACTION")
    conn.execute("UPDATE etl_lake_writer SET commits = 1")
    conn.execute("COMMIT")
