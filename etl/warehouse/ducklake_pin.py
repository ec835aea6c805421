"""Readers of a DuckLake see whole runs: the snapshot they attach at, and how it is chosen.

Every commit on a lake is a snapshot, and an unpinned reader sees the latest one: the middle
of any run in progress. So each run that ends `succeeded` or `partial` records, after its
ledger row is closed, the snapshot it ended on (`etl_runs.snapshot_id`: the latest snapshot
when it recorded it, which holds all of its commits), and whether that snapshot is *whole*
(`snapshot_whole`): whether no run at all was `running` in it — read at that very snapshot,
so the answer is a fact about it, whatever commits after. Readers attach at the latest whole
snapshot (`ATTACH … (SNAPSHOT_VERSION n)`).

With several workers, a run that ends while another is still running records a snapshot that
is not whole (the other's batches so far are in it); the last of a group of overlapping runs
to end records a whole one, holding every one of them. The price is freshness: the pin moves
only when all runs are finished at once, so runs that always overlap (staggered schedules)
keep readers at the last moment that none ran; a failed run records nothing, and a killed one
holds the pin back until a later run marks it abandoned (docs/scale-out.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

from etl.errors import WarehouseError

MIGRATION = "0008_run_snapshot"


class NothingFinished(WarehouseError):
    """No run has ended on the lake yet (or none while no other ran): nothing whole to read."""

    def __init__(self) -> None:
        super().__init__("no run has finished on this lake yet (run `etl sync` first)")


@dataclass(frozen=True)
class Pin:
    """The snapshot readers attach at: its id, when it was made, the run that recorded it."""

    snapshot_id: int
    made_at: datetime | None
    run_id: str


def record_end(conn: duckdb.DuckDBPyConnection, catalog: str, run_id: str) -> None:
    """Record the snapshot run `run_id` ended on, and whether it is whole (one transaction).

    Called after the run's ledger row is closed, so the snapshot read here already shows it
    finished. Read and checked inside one transaction: both see the same snapshot.
    """
    conn.execute("BEGIN TRANSACTION")
    row = conn.execute("SELECT id FROM ducklake_current_snapshot(?)", [catalog]).fetchone()
    assert row is not None
    running = conn.execute("SELECT count(*) FROM etl_runs WHERE status = 'running'").fetchone()
    whole = running is not None and running[0] == 0
    conn.execute(
        "UPDATE etl_runs SET snapshot_id = ?, snapshot_whole = ? WHERE run_id = ?",
        [row[0], whole, run_id],
    )
    conn.execute("COMMIT")


def _ledger_columns(conn: duckdb.DuckDBPyConnection, catalog: str) -> set[str]:
    """The columns of `catalog`'s run ledger (none: the first run is still creating it)."""
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_catalog = ? "
        "AND table_name = 'etl_runs'",
        [catalog],
    ).fetchall()
    return {str(row[0]) for row in rows}


def latest_pin(conn: duckdb.DuckDBPyConnection, catalog: str) -> Pin | None:
    """The latest whole snapshot recorded in `catalog` (attached at its latest snapshot).

    None: a lake whose runs ended before they recorded their snapshots (migration
    `MIGRATION`), and none since: read it unpinned, as it was read then.

    Raises:
        NothingFinished: no run has ended on the lake yet (so nothing is whole to read).
    """
    columns = _ledger_columns(conn, catalog)
    if not columns:
        raise NothingFinished
    if "snapshot_whole" in columns:
        found = conn.execute(
            f"SELECT r.snapshot_id, s.snapshot_time, r.run_id FROM {catalog}.etl_runs r "
            f"LEFT JOIN ducklake_snapshots(?) s ON s.snapshot_id = r.snapshot_id "
            f"WHERE r.snapshot_whole ORDER BY r.snapshot_id DESC LIMIT 1",
            [catalog],
        ).fetchone()
        if found is not None:
            return Pin(int(found[0]), found[1], str(found[2]))
        since = conn.execute(
            f"SELECT applied_at FROM {catalog}.schema_migrations WHERE name = ?", [MIGRATION]
        ).fetchone()
        before = "AND ended_at < ?" if since else ""
        legacy = conn.execute(
            f"SELECT count(*) FROM {catalog}.etl_runs WHERE status IN ('succeeded', 'partial') "
            f"{before}",
            [since[0]] if since else [],
        ).fetchone()
    else:  # being created, or not migrated since: any finished run is from before pins
        legacy = conn.execute(
            f"SELECT count(*) FROM {catalog}.etl_runs WHERE status IN ('succeeded', 'partial')"
        ).fetchone()
    if legacy and legacy[0]:
        return None
    raise NothingFinished
