"""`etl lake snapshot` and `etl lake maintain`: what readers see, and keeping a lake small.

DuckLake never rewrites files by itself: every batch adds Parquet files (and delete files
for updated keys), and every commit a snapshot that keeps the files it saw alive. `maintain`
runs DuckLake's maintenance calls, each its own transaction, while it holds the workers'
batches off with a lease (`ducklake_lease`: DuckLake does not detect a compaction racing a
batch that deletes rows from the files being merged). Workers wait for the lease, then go
on: it is safe while they write (tested concurrently with a sync), at the price of pausing
their commits for as long as maintenance runs.

1. `ducklake_merge_adjacent_files`: small files of a table merged into larger ones (the
   replaced files stay for the snapshots that still reference them).
2. `ducklake_expire_snapshots` older than a cutoff: `lake.keep_snapshots_days` ago, but
   never past the snapshot readers are pinned to nor past the start of a run still in
   progress (its snapshots are what it builds on, and the next pin will include it).
3. `ducklake_cleanup_old_files`: the files only expired snapshots referenced, deleted;
   then `ducklake_delete_orphaned_files` for files no snapshot ever named (writes that were
   rolled back, e.g. when a service went away) older than the same cutoff and an hour.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb

from etl.config import LakeSettings, WarehouseSettings
from etl.errors import ConfigError
from etl.warehouse import ducklake_lease as lease
from etl.warehouse.ducklake import CATALOG, DuckLake, DuckLakeWriter, is_lake
from etl.warehouse.ducklake_pin import NothingFinished, Pin

# A file no snapshot names may belong to a commit still in flight: leave it this long.
ORPHAN_GRACE = timedelta(hours=1)
_META = f"__ducklake_metadata_{CATALOG}"


def lake_of(settings: WarehouseSettings) -> DuckLake:
    """The DuckLake `warehouse.path` names.

    Raises:
        ConfigError: it names a DuckDB file.
    """
    if not is_lake(settings.path):
        raise ConfigError(
            f"warehouse.path: {settings.path} is a DuckDB file; `etl lake` works on a DuckLake "
            "(ducklake:postgres:<conninfo>)"
        )
    return DuckLake(settings.path, settings)


def snapshot(settings: WarehouseSettings) -> Pin | None:
    """The snapshot readers attach at (None: a lake from before runs recorded them)."""
    return lake_of(settings).pin()


@dataclass(frozen=True)
class Files:
    """A lake's files: what its latest snapshot reads, and what the store holds."""

    live: int
    """Data and delete files of the latest snapshot."""
    stored: int
    """Every file the catalog knows, for any snapshot, plus those waiting to be deleted."""
    snapshots: int


@dataclass(frozen=True)
class Maintained:
    """What `maintain` did."""

    before: Files
    after: Files
    cutoff: datetime
    """Snapshots older than this were expired."""
    seconds: float
    complete: bool = True
    """False: asked to stop, it skipped the steps after the one it was in."""

    def describe(self) -> str:
        """One line for the user: what changed, in files and snapshots."""
        before, after = self.before, self.after
        return (
            f"maintained in {self.seconds:.1f} s: files read {before.live} → {after.live}, "
            f"files stored {before.stored} → {after.stored}, "
            f"snapshots {before.snapshots} → {after.snapshots} "
            f"(expired before {self.cutoff.isoformat(timespec='seconds')})"
            + ("" if self.complete else "; stopped early, the remaining steps skipped")
        )


def files(conn: duckdb.DuckDBPyConnection) -> Files:
    """Count the lake's files from its catalog (no listing of the store)."""

    def count(sql: str) -> int:
        row = conn.execute(sql).fetchone()
        return int(row[0]) if row else 0

    live = count(
        f"SELECT (SELECT count(*) FROM {_META}.ducklake_data_file WHERE end_snapshot IS NULL) "
        f"+ (SELECT count(*) FROM {_META}.ducklake_delete_file WHERE end_snapshot IS NULL)"
    )
    stored = count(
        f"SELECT (SELECT count(*) FROM {_META}.ducklake_data_file) "
        f"+ (SELECT count(*) FROM {_META}.ducklake_delete_file) "
        f"+ (SELECT count(*) FROM {_META}.ducklake_files_scheduled_for_deletion)"
    )
    snapshots = count(f"SELECT count(*) FROM {_META}.ducklake_snapshot")
    return Files(live, stored, snapshots)


def expiry_cutoff(
    conn: duckdb.DuckDBPyConnection, now: datetime, keep: timedelta, pin: Pin | None
) -> datetime:
    """The time before which snapshots may go: `keep` ago, at most the pin and running runs."""
    cutoff = now - keep
    if pin is not None and pin.made_at is not None:
        cutoff = min(cutoff, pin.made_at)
    row = conn.execute("SELECT min(started_at) FROM etl_runs WHERE status = 'running'").fetchone()
    if row and row[0] is not None:
        cutoff = min(cutoff, row[0])
    return cutoff


def _call(writer: DuckLakeWriter, sql: str, what: str) -> None:
    """One maintenance call as its own transaction, again if it lost a race with a writer."""
    writer.retrying(lambda conn: conn.execute(sql), what)


# Written outside batches (ledger, windows, sweeps: small commits, inlined in the catalog):
# never compacted, since only batches wait for the maintenance lease.
NOT_COMPACTED = ("etl_runs", "sync_windows", "sync_reverify", "schema_migrations",
                 "etl_lake_writer")  # fmt: skip


def batch_tables(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """The lake's tables written by batches only: those maintenance compacts."""
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = ? "
        "AND table_type = 'BASE TABLE' ORDER BY table_name",
        [CATALOG],
    ).fetchall()
    return [name for (name,) in rows if name not in NOT_COMPACTED]


def maintain(
    settings: WarehouseSettings,
    lake_settings: LakeSettings,
    halt: threading.Event | None = None,
) -> Maintained:
    """Merge small files, expire old snapshots, delete the files nothing needs any more.

    Holds the lake's batch writers off meanwhile (`ducklake_lease`): they wait, then go on.
    `halt` (set from another thread, e.g. on SIGTERM) skips the steps not yet begun; each
    step is a transaction of its own, so stopping between them leaves nothing half done.
    """
    lake = lake_of(settings)
    started = time.perf_counter()
    writer = lake.writer()

    taken = [0.0]
    halted = halt or threading.Event()
    skipped: list[str] = []

    def step(sql: str, what: str) -> None:
        """`sql` under the lease, taken (or renewed when a third of it is spent) first."""
        if halted.is_set():
            skipped.append(what)
            return
        if time.monotonic() - taken[0] > lease.LEASE_S / 3:
            writer.retrying(lease.take, "holding writers off for maintenance")
            taken[0] = time.monotonic()
        _call(writer, sql, what)

    try:
        before = writer.retrying(files, "counting the lake's files")
        try:
            for table in writer.retrying(batch_tables, "listing tables"):
                step(
                    f"CALL ducklake_merge_adjacent_files('{CATALOG}', '{table}')",
                    f"merging small files of {table}",
                )
            try:
                pin: Pin | None = lake.pin()
            except NothingFinished:  # readers see nothing yet: no snapshot of theirs to keep
                pin = None
            now = datetime.now(UTC)
            keep = timedelta(days=lake_settings.keep_snapshots_days)
            cutoff = writer.retrying(
                lambda conn: expiry_cutoff(conn, now, keep, pin), "finding what may be expired"
            )
            at = f"TIMESTAMPTZ '{cutoff.isoformat()}'"
            step(
                f"CALL ducklake_expire_snapshots('{CATALOG}', older_than => {at})",
                "expiring old snapshots",
            )
            step(
                f"CALL ducklake_cleanup_old_files('{CATALOG}', cleanup_all => true)",
                "deleting the files of expired snapshots",
            )
            orphans = f"TIMESTAMPTZ '{min(cutoff, now - ORPHAN_GRACE).isoformat()}'"
            step(
                f"CALL ducklake_delete_orphaned_files('{CATALOG}', older_than => {orphans})",
                "deleting orphaned files",
            )
        finally:
            writer.retrying(lease.give_back, "letting writers write again")
        after = writer.retrying(files, "counting the lake's files")
    finally:
        writer.close()
    seconds = time.perf_counter() - started
    return Maintained(before, after, cutoff, seconds, complete=not skipped)
