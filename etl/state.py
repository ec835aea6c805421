"""Incremental state and the run ledger (`etl_runs`). The caller owns the connection.

Deployment windows: every (project, environment) has rows in `sync_windows`. A run fetches
the windows a previous run left unfinished, plus a new tail from the latest planned end minus
the lookback up to the run's start (never past it: data newer than the start belongs to the
next run). A partition with no windows yet starts at the backfill start (`--since`, else now −
backfill_days). `--since` forces a fresh range from that date.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb
import orjson
import polars as pl

from etl.errors import WarehouseError
from etl.warehouse.sqlutil import registered, rollback


@dataclass(frozen=True, slots=True)
class Window:
    """One deployment time window [from_at, to_at) of one (project, environment)."""

    project_key: str
    environment_key: str
    from_at: datetime
    to_at: datetime


def split_range(start: datetime, end: datetime, size: timedelta) -> list[tuple[datetime, datetime]]:
    """[start, end) cut into consecutive pieces of at most `size`."""
    pieces: list[tuple[datetime, datetime]] = []
    lo = start
    while lo < end:
        hi = min(lo + size, end)
        pieces.append((lo, hi))
        lo = hi
    return pieces


def plan_windows(
    conn: duckdb.DuckDBPyConnection,
    partitions: Sequence[tuple[str, str]],
    *,
    run_id: str,
    backfill_start: datetime,
    end: datetime,
    lookback: timedelta,
    window: timedelta,
    force_start: bool,
    min_pieces: int = 1,
) -> list[Window]:
    """Decide (and record, in one transaction) the windows this run fetches.

    Each partition's new range is cut into windows of at most `window`, and into at least
    `min_pieces` windows (the reader asks for more when there are few partitions).

    One query reads the partitions' windows and one upsert records the new ones, whatever
    the number of partitions and windows.
    """
    keys = pl.DataFrame(
        list(partitions), schema=["project_key", "environment_key"], orient="row"
    ).unique()
    planned: dict[Window, None] = {}  # an ordered set
    latest_end: dict[tuple[str, str], datetime] = {}
    conn.execute("BEGIN TRANSACTION")
    try:
        with registered(conn, "_partitions", keys.to_arrow()):
            rows = conn.execute(
                "SELECT w.project_key, w.environment_key, w.from_at, w.to_at, w.done_run_id "
                "FROM sync_windows w JOIN _partitions p USING (project_key, environment_key) "
                "ORDER BY w.from_at"
            ).fetchall()
        for project_key, environment_key, lo, hi, done_run_id in rows:
            partition = (project_key, environment_key)
            latest_end[partition] = max(hi, latest_end.get(partition, hi))
            if done_run_id is None:
                planned[Window(project_key, environment_key, lo, hi)] = None
        fresh: list[Window] = []
        for project_key, environment_key in partitions:
            latest = latest_end.get((project_key, environment_key))
            if force_start or latest is None:
                start = backfill_start
            else:
                start = max(min(latest, end) - lookback, backfill_start)
            # Whole seconds: window edges stay exact in the API's milliseconds.
            piece = timedelta(seconds=-(-(end - start).total_seconds() // max(1, min_pieces)))
            size = min(window, piece) if end > start else window
            for lo, hi in split_range(start, end, size):
                fresh.append(Window(project_key, environment_key, lo, hi))
        if fresh:
            with registered(conn, "_fresh", _windows_frame(fresh, run_id).to_arrow()):
                conn.execute("INSERT OR REPLACE INTO sync_windows BY NAME SELECT * FROM _fresh")
        conn.execute("COMMIT")
    except duckdb.Error as exc:
        rollback(conn)
        raise WarehouseError(f"planning deployment windows failed: {exc}") from None
    planned.update(dict.fromkeys(fresh))
    return list(planned)


def _windows_frame(windows: Sequence[Window], run_id: str) -> pl.DataFrame:
    """New windows as rows of `sync_windows`: planned by this run, not done."""
    timestamp = pl.Datetime("us", "UTC")
    return pl.DataFrame(
        {
            "project_key": [w.project_key for w in windows],
            "environment_key": [w.environment_key for w in windows],
            "from_at": pl.Series([w.from_at for w in windows], dtype=timestamp),
            "to_at": pl.Series([w.to_at for w in windows], dtype=timestamp),
            "planned_run_id": [run_id] * len(windows),
            "done_run_id": pl.Series([None] * len(windows), dtype=pl.String),
        }
    )


def start_run(
    conn: duckdb.DuckDBPyConnection, run_id: str, started_at: datetime, options: Mapping[str, Any]
) -> None:
    """Record a new run; any run still marked running was killed and is marked abandoned."""
    conn.execute(
        "UPDATE etl_runs SET status = 'abandoned', error = 'the process ended before the run "
        "finished (killed or crashed); its committed batches were kept' WHERE status = 'running'"
    )
    conn.execute(
        "INSERT INTO etl_runs (run_id, started_at, status, options) VALUES (?, ?, 'running', ?)",
        [run_id, started_at, orjson.dumps(options).decode()],
    )


def finish_run(
    conn: duckdb.DuckDBPyConnection,
    run_id: str,
    *,
    ended_at: datetime,
    status: str,
    streams: Mapping[str, Any],
    requests: int,
    retries: int,
    rate_limited: int,
    error: str | None,
) -> None:
    """Close the run's ledger row with its outcome and counts."""
    conn.execute(
        "UPDATE etl_runs SET ended_at = ?, status = ?, streams = ?, requests = ?, retries = ?, "
        "rate_limited = ?, error = ? WHERE run_id = ?",
        [
            ended_at,
            status,
            orjson.dumps(streams).decode(),
            requests,
            retries,
            rate_limited,
            error,
            run_id,
        ],
    )
