"""The transactional merge of one batch: the only writer of data, in plain SQL.

In one transaction `merge_batch` upserts every frame from
Arrow (delete the keys the warehouse already holds, then `INSERT … BY NAME`, never row by
row), replaces the child rows of the parents it touched, and applies the batch's marks:
deployment windows become done, and completed listings soft-delete the rows of their scope
that this run did not see. Either all of that is committed or none of it, so a crash never
leaves state ahead of data.

The data tables declare their keys in comments, not as PRIMARY KEY constraints: DuckDB keeps
a constraint's ART index in memory and updates it row by row, which made loading ~3× slower
and memory grow with the warehouse. Uniqueness holds by construction instead — a batch whose
keys repeat is refused before anything is written, and every key the warehouse already
holds is deleted before the batch is inserted, inside one transaction with one writer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime

import duckdb
import polars as pl
import pyarrow as pa

from etl.errors import WarehouseError
from etl.normalize.registry import CASCADES, CHILD_OF, KEYS, SWEPT_TABLE
from etl.records import Mark, ScopeComplete, WindowDone, WindowProgress
from etl.warehouse.sqlutil import ident, registered, rollback

# DuckDB's wordings of "over memory_limit" (not all raised as OutOfMemoryException).
_OUT_OF_MEMORY = re.compile(r"out of memory|failed to pin|(could not|failed to) allocate", re.I)
# ...and of a full disk (its temporary files are capped at 90% of the free space).
_DISK_FULL = re.compile(r"no space left on device|failed to offload|max_temp_directory_size", re.I)


def _arrow(frame: pl.DataFrame) -> pa.Table:
    """The frame as Arrow without copying its strings.

    DuckDB reads Polars' string views as they are; the default conversion copies every
    string into a large_string array first.
    """
    return frame.to_arrow(compat_level=pl.CompatLevel.newest())


def _where_equal(columns: Iterable[str]) -> str:
    return " AND ".join(f"{ident(c)} = ?" for c in columns)


def _match(columns: Iterable[str], left: str, right: str) -> str:
    return " AND ".join(f"{left}.{ident(c)} = {right}.{c}" for c in columns)


def _existing_keys(conn: duckdb.DuckDBPyConnection, table: str) -> pa.Table | None:
    """The keys of the staged rows (`_stage`) that `table` already holds, or None.

    A first load finds none and so skips every delete below: one scan of the key instead
    of one per table it would have cleared.
    """
    key = KEYS[table]
    found = conn.execute(
        f"SELECT {', '.join(ident(k) for k in key)} FROM {ident(table)} t "
        f"WHERE EXISTS (SELECT 1 FROM _stage s WHERE {_match(key, 't', 's')})"
    ).to_arrow_table()
    return found if found.num_rows else None


def _delete_keys(
    conn: duckdb.DuckDBPyConnection, table: str, columns: Sequence[str], keys: pa.Table
) -> None:
    with registered(conn, "_gone", keys):
        conn.execute(
            f"DELETE FROM {ident(table)} t "
            f"WHERE EXISTS (SELECT 1 FROM _gone g WHERE {_match(columns, 't', 'g')})"
        )


@dataclass(frozen=True)
class Staged:
    """A batch checked and converted for `merge_batch`: table → Arrow rows, in merge order.

    Staging is separate so that it can run on another thread than the merge: the thread
    that owns the warehouse connection is a sync's bottleneck.
    """

    tables: dict[str, pa.Table]
    children: frozenset[str]
    """Tables whose parent is in the batch: their rows go with the parent's, not by key."""


def stage(frames: Mapping[str, pl.DataFrame]) -> Staged:
    """Refuse a batch that holds a key twice; order parents before children; to Arrow.

    Raises:
        WarehouseError: a frame repeats a key (nothing of the batch is written).
        ValueError: a frame names no known table.
    """
    for table, frame in frames.items():
        if table not in KEYS:
            raise ValueError(f"no such table {table!r}")
        if frame.select(KEYS[table]).is_duplicated().any():
            raise WarehouseError(
                f"{table}: a batch holds the same key {KEYS[table]} twice; nothing written"
            )
    children = [c for c, (_, parent) in CHILD_OF.items() if c in frames and parent in frames]
    parents = [table for table in frames if table not in children]
    return Staged(
        {table: _arrow(frames[table]) for table in [*parents, *children] if frames[table].height},
        frozenset(children),
    )


def _upsert_all(conn: duckdb.DuckDBPyConnection, staged: Staged) -> None:
    """Replace the rows whose keys the batch holds, and the children of replaced parents.

    Parents first: the keys a parent's rows hold that the warehouse already has are
    deleted, with all their child rows (a deployment whose pull-request list shrank must
    lose the stale links); then every table's rows are inserted. Child rows are never
    deleted by key: their parents' rows went with the parent.
    """
    for table, rows in staged.tables.items():
        with registered(conn, "_stage", rows):
            existing = None if table in staged.children else _existing_keys(conn, table)
            if existing is not None:
                for child, (columns, parent) in CHILD_OF.items():
                    if parent == table and child in staged.children:
                        _delete_keys(conn, child, columns, existing)
                _delete_keys(conn, table, KEYS[table], existing)
            conn.execute(f"INSERT INTO {ident(table)} BY NAME SELECT * FROM _stage")


def _sweep(
    conn: duckdb.DuckDBPyConnection, mark: ScopeComplete, run_id: str, now: datetime
) -> None:
    """Soft-delete the rows of a fully listed scope that this run did not see (and cascade)."""
    table = SWEPT_TABLE[mark.stream]
    scope = dict(mark.scope)
    condition = _where_equal(scope) if scope else "TRUE"
    conn.execute(
        f"UPDATE {ident(table)} SET _deleted_at = ? "
        f"WHERE {condition} AND _run_id <> ? AND _deleted_at IS NULL",
        [now, *scope.values(), run_id],
    )
    # A row seen again after deletion comes back: its upsert wrote _deleted_at = NULL.
    for child, columns in CASCADES.get(table, []):
        conn.execute(
            f"UPDATE {ident(child)} c SET _deleted_at = ? WHERE c._deleted_at IS NULL AND EXISTS "
            f"(SELECT 1 FROM {table} p WHERE {_match(columns, 'c', 'p')} "
            "AND p._deleted_at IS NOT NULL)",
            [now],
        )


def _apply_marks(
    conn: duckdb.DuckDBPyConnection, marks: Sequence[Mark], run_id: str, now: datetime
) -> None:
    """Shrink or close the batch's deployment windows (an UPDATE each), then sweep."""
    _shrink_windows(conn, [mark for mark in marks if isinstance(mark, WindowProgress)])
    windows = [mark for mark in marks if isinstance(mark, WindowDone)]
    if windows:
        key = [f.name for f in fields(WindowDone)]  # sync_windows' key, column for column
        done = pa.table({name: [getattr(w, name) for w in windows] for name in key})
        with registered(conn, "_done", done):
            conn.execute(
                f"UPDATE sync_windows w SET done_run_id = ? FROM _done d "
                f"WHERE {_match(key, 'w', 'd')}",
                [run_id],
            )
    for mark in marks:
        if isinstance(mark, ScopeComplete):
            _sweep(conn, mark, run_id, now)


def _shrink_windows(conn: duckdb.DuckDBPyConnection, marks: Sequence[WindowProgress]) -> None:
    """Record how far down each window has been read: the least `remaining_to` of the batch."""
    if not marks:
        return
    least: dict[tuple[object, ...], datetime] = {}
    for mark in marks:
        key = (mark.project_key, mark.environment_key, mark.from_at, mark.to_at, mark.stream)
        least[key] = min(mark.remaining_to, least.get(key, mark.remaining_to))
    names = [f.name for f in fields(WindowDone)]
    rows = pa.table(
        {
            **{name: [key[i] for key in least] for i, name in enumerate(names)},
            "remaining_to": list(least.values()),
        }
    )
    with registered(conn, "_progress", rows):
        conn.execute(
            "UPDATE sync_windows w SET remaining_to = least(coalesce(w.remaining_to, w.to_at), "
            f"p.remaining_to) FROM _progress p WHERE {_match(names, 'w', 'p')}"
        )


def duplicate_keys(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Every key held by more than one row of a data table (empty: nothing doubled).

    The merge keeps keys unique by construction; a sync ends with this check so that a
    doubled row could never go unnoticed.
    """
    problems: list[str] = []
    for table, key in KEYS.items():
        columns = ", ".join(ident(k) for k in key)
        doubled = conn.execute(
            f"SELECT {columns}, count(*) AS n FROM {ident(table)} "
            f"GROUP BY ALL HAVING count(*) > 1 LIMIT 3"
        ).fetchall()
        problems.extend(f"{table}: key {row[:-1]} is held by {row[-1]} rows" for row in doubled)
    return problems


def _batch_failure(exc: duckdb.Error) -> str:
    """What went wrong with a batch, in our terms (DuckDB's own advice names its SQL settings)."""
    reason = str(exc).split("\n", 1)[0]
    if "COMMIT succeeded" in reason:
        what = f"a batch was committed, but the checkpoint after it failed: {reason}"
    else:
        what = f"loading a batch failed (nothing of it was kept): {reason}"
    if isinstance(exc, duckdb.OutOfMemoryException) or _OUT_OF_MEMORY.search(reason):
        what += "; raise [warehouse] memory_limit (or lower [sync] batch_bytes)"
    elif _DISK_FULL.search(reason):
        what += "; the disk holding the warehouse is full: free space there and run again"
    return what


def write_batch(
    conn: duckdb.DuckDBPyConnection,
    staged: Staged,
    marks: Sequence[Mark],
    *,
    run_id: str,
    now: datetime,
) -> None:
    """A batch's statements, inside the caller's transaction.

    A backend that must re-run a batch after a conflict wraps them in its own.
    """
    _upsert_all(conn, staged)
    _apply_marks(conn, marks, run_id, now)


def merge_batch(
    conn: duckdb.DuckDBPyConnection,
    batch: Staged | Mapping[str, pl.DataFrame],
    marks: Sequence[Mark],
    *,
    run_id: str,
    now: datetime,
) -> None:
    """Upsert a batch (staged, or frames to stage) and apply `marks` in one transaction."""
    staged = batch if isinstance(batch, Staged) else stage(batch)
    try:
        conn.execute("BEGIN TRANSACTION")
        write_batch(conn, staged, marks, run_id=run_id, now=now)
        conn.execute("COMMIT")
    except duckdb.Error as exc:
        rollback(conn)
        raise WarehouseError(_batch_failure(exc)) from None
    except BaseException:
        rollback(conn)
        raise
