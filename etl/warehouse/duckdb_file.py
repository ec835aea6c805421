"""The DuckDB file backend: one `.duckdb` file on this machine.

Everything specific to a DuckDB file lives here: the `ATTACH` options (storage version, row
group size), where DuckDB spills, how its lock errors read, and what publishing means.
"""

from __future__ import annotations

import fcntl
import glob
import logging
import os
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import duckdb

from etl.config import WarehouseSettings
from etl.errors import WarehouseError
from etl.records import Mark
from etl.warehouse import merge
from etl.warehouse.files import clone_file, replace_atomically
from etl.warehouse.merge import Staged
from etl.warehouse.migrate import migrate

log = logging.getLogger(__name__)

# The oldest DuckDB storage format with zstd for strings (migration 0005); DuckDB >= 1.3 reads
# it. A writer upgrades an older file to it; a file already newer stays as it is.
STORAGE_VERSION = "v1.3.0"
_NEWER_STORAGE = "cannot be lowered"

T = TypeVar("T")


def connect(
    path: Path,
    *,
    read_only: bool = False,
    checkpoint_threshold: str | None = None,
    threads: int | None = None,
    memory_limit: str | None = None,
    row_group_size: int | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse file, turning DuckDB's lock error into a clear WarehouseError.

    A writer opens an in-memory database and attaches the file to it as the default catalog
    (every unqualified name refers to it): `STORAGE_VERSION` and `ROW_GROUP_SIZE` are options
    of `ATTACH`, not of a connection, and the row group size is not stored in the file.
    """
    config: dict[str, str | bool | int | float | list[str]] = {}
    if checkpoint_threshold:
        config["checkpoint_threshold"] = checkpoint_threshold
    if threads:
        config["threads"] = threads
    if memory_limit:
        config["memory_limit"] = memory_limit
    try:
        if read_only:
            return duckdb.connect(str(path), read_only=True, config=config)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Spill where DuckDB would for the file itself, not into `.tmp` under the cwd.
        conn = duckdb.connect(":memory:", config={**config, "temp_directory": f"{path}.tmp"})
        try:
            _attach(conn, path, row_group_size)
        except BaseException:
            conn.close()
            raise
        return conn
    except OSError as exc:
        raise WarehouseError(f"{path}: cannot create the warehouse: {exc.strerror}") from None
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise WarehouseError(
                f"{path}: the warehouse is in use by another process (one writer at a time)"
            ) from None
        raise WarehouseError(f"{path}: cannot open the warehouse: {exc}") from None


def _attach(conn: duckdb.DuckDBPyConnection, path: Path, row_group_size: int | None) -> None:
    """Attach `path` as `warehouse` in at least `STORAGE_VERSION`, and use it."""
    quoted = str(path).replace("'", "''")
    options = ["READ_WRITE"] + ([f"ROW_GROUP_SIZE {int(row_group_size)}"] if row_group_size else [])
    try:
        upgrade = [*options, f"STORAGE_VERSION '{STORAGE_VERSION}'"]
        conn.execute(f"ATTACH '{quoted}' AS warehouse ({', '.join(upgrade)})")
    except duckdb.InvalidInputException as exc:
        if _NEWER_STORAGE not in str(exc):
            raise
        conn.execute(f"ATTACH '{quoted}' AS warehouse ({', '.join(options)})")
    conn.execute("USE warehouse")


class DuckDBFileWriter:
    """The sync's session on its working copy; `publish` puts a copy where readers look."""

    def __init__(self, files: DuckDBFile, conn: duckdb.DuckDBPyConnection, lock: int) -> None:
        self.files = files
        self.conn = conn
        self._lock: int | None = lock

    def migrate(self) -> list[str]:
        """Apply pending migrations, then (re)create the views."""
        return migrate(self.conn)

    def merge_batch(
        self, staged: Staged, marks: Sequence[Mark], *, run_id: str, now: datetime
    ) -> None:
        """One batch and its marks in one transaction."""
        merge.merge_batch(self.conn, staged, marks, run_id=run_id, now=now)

    def retrying(self, work: Callable[[duckdb.DuckDBPyConnection], T], what: str) -> T:
        """`work(conn)` once: the file has one writer, so nothing can conflict with it."""
        return work(self.conn)

    def publish(self, run_id: str | None = None) -> None:
        """Checkpoint the working copy, copy it beside the published file, rename it over.

        After the checkpoint the working file alone holds every commit (its log is empty)
        and nothing writes to it while it is copied: this thread is the only writer. A
        reader holding the old published file keeps reading it (the rename leaves its inode
        alone); every new connection gets the new one.
        """
        self.conn.execute("CHECKPOINT")
        files = self.files
        temp = files.publish_temp()
        try:
            how = clone_file(files.working, temp)
            replace_atomically(temp, files.path)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise WarehouseError(f"{files.path}: publishing failed: {exc}") from None
        log.debug("published %s (%s copy)", files.path, how)  # housekeeping: every run

    def close(self) -> None:
        """Close the connection (DuckDB checkpoints what is left) and let another sync in."""
        self.conn.close()
        if self._lock is not None:
            os.close(self._lock)  # releases the flock
            self._lock = None


class DuckDBFile:
    """A warehouse published at `path`, written by the sync in a private working copy.

    `<path>.sync/` is the sync's own: `working.duckdb` (its state: every committed batch,
    the incremental windows, the full ledger) and `lock`. Readers never open it, so they
    never block the sync; the sync never opens `path`, so it never blocks them.
    """

    def __init__(self, path: Path, settings: WarehouseSettings | None = None) -> None:
        self.path = path
        self.settings = settings or WarehouseSettings(path=path)
        self.target = str(path)
        self.sync_dir = path.parent / f"{path.name}.sync"
        self.working = self.sync_dir / "working.duckdb"

    def publish_temp(self) -> Path:
        """Where a publish copies to: beside `path` (a rename never crosses filesystems)."""
        return self.path.parent / f".{self.path.name}.publish-{os.getpid()}.tmp"

    def writer(self) -> DuckDBFileWriter:
        """Take the sync's lock and open the working copy with the `[warehouse]` settings.

        Raises:
            WarehouseError: another sync holds the lock, or the files cannot be made.
        """
        lock = self._lock()
        try:
            self._remove_stale_temps()
            if not self.working.exists() and self.path.exists():
                self._adopt()
            settings = self.settings
            conn = connect(
                self.working,
                checkpoint_threshold=settings.checkpoint_threshold,
                threads=settings.threads,
                memory_limit=settings.memory_limit,
                row_group_size=settings.row_group_size,
            )
        except BaseException:
            os.close(lock)
            raise
        return DuckDBFileWriter(self, conn, lock)

    def _lock(self) -> int:
        """An exclusive lock on `<path>.sync/lock` (held until the writer closes)."""
        try:
            self.sync_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.sync_dir / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            reason = exc.strerror
            raise WarehouseError(f"{self.path}: cannot create the warehouse: {reason}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise WarehouseError(
                f"{self.path}: another etl sync is writing this warehouse (one at a time)"
            ) from None
        return fd

    def _remove_stale_temps(self) -> None:
        """Remove the copies of publishes that crashed before their rename (we hold the lock)."""
        for stale in self.path.parent.glob(f".{glob.escape(self.path.name)}.publish-*.tmp"):
            stale.unlink(missing_ok=True)
        (self.sync_dir / "adopting.duckdb").unlink(missing_ok=True)

    def _adopt(self) -> None:
        """Start the working copy from `path` (a warehouse written in place by an older version).

        A log left beside it (`path.wal`: that version was killed mid-run) is folded in first
        by opening the file once for writing; copying the file without it would lose commits.
        """
        wal = self.path.with_name(f"{self.path.name}.wal")
        if wal.exists():
            connect(self.path).close()  # replays and checkpoints the log, then removes it
        temp = self.sync_dir / "adopting.duckdb"
        try:
            clone_file(self.path, temp)
            replace_atomically(temp, self.working)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise WarehouseError(f"{self.path}: cannot adopt the warehouse: {exc}") from None
        log.info("adopted %s as the sync's working copy %s", self.path, self.working)

    def reader(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection to the published file."""
        if not self.path.exists():
            raise WarehouseError(f"{self.path}: no warehouse here yet (run `etl sync` first)")
        return connect(self.path, read_only=True)
