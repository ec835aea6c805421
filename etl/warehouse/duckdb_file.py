"""The DuckDB file backend: one `.duckdb` file on this machine.

Everything specific to a DuckDB file lives here: the `ATTACH` options (storage version, row
group size), where DuckDB spills, how its lock errors read, and what publishing means.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import duckdb

from etl.config import WarehouseSettings
from etl.errors import WarehouseError
from etl.records import Mark
from etl.warehouse import merge
from etl.warehouse.merge import Staged
from etl.warehouse.migrate import migrate

# The oldest DuckDB storage format with zstd for strings (migration 0005); DuckDB >= 1.3 reads
# it. A writer upgrades an older file to it; a file already newer stays as it is.
STORAGE_VERSION = "v1.3.0"
_NEWER_STORAGE = "cannot be lowered"


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
    """The sync's session on a DuckDB file."""

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self.conn = conn

    def migrate(self) -> list[str]:
        """Apply pending migrations, then (re)create the views."""
        return migrate(self.conn)

    def merge_batch(
        self, staged: Staged, marks: Sequence[Mark], *, run_id: str, now: datetime
    ) -> None:
        """One batch and its marks in one transaction."""
        merge.merge_batch(self.conn, staged, marks, run_id=run_id, now=now)

    def publish(self) -> None:
        """Checkpoint, so that the file alone holds every committed batch."""
        self.conn.execute("CHECKPOINT")

    def close(self) -> None:
        """Close the connection (DuckDB checkpoints what is left)."""
        self.conn.close()


class DuckDBFile:
    """A warehouse in one DuckDB file at `path`."""

    def __init__(self, path: Path, settings: WarehouseSettings | None = None) -> None:
        self.path = path
        self.settings = settings or WarehouseSettings(path=path)
        self.target = str(path)

    def writer(self) -> DuckDBFileWriter:
        """Open the file for the sync, with the `[warehouse]` settings."""
        settings = self.settings
        return DuckDBFileWriter(
            connect(
                self.path,
                checkpoint_threshold=settings.checkpoint_threshold,
                threads=settings.threads,
                memory_limit=settings.memory_limit,
                row_group_size=settings.row_group_size,
            )
        )

    def reader(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection to the file."""
        if not self.path.exists():
            raise WarehouseError(f"{self.path}: no warehouse here yet (run `etl sync` first)")
        return connect(self.path, read_only=True)
