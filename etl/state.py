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

from etl.errors import WarehouseError


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
) -> list[Window]:
    """Decide (and record, in one transaction) the windows this run fetches."""
    planned: list[Window] = []
    conn.execute("BEGIN TRANSACTION")
    try:
        for project_key, environment_key in partitions:
            key = [project_key, environment_key]
            pending = conn.execute(
                "SELECT from_at, to_at FROM sync_windows WHERE project_key = ? "
                "AND environment_key = ? AND done_run_id IS NULL ORDER BY from_at",
                key,
            ).fetchall()
            planned.extend(Window(project_key, environment_key, lo, hi) for lo, hi in pending)
            (latest_end,) = conn.execute(
                "SELECT max(to_at) FROM sync_windows WHERE project_key = ? AND environment_key = ?",
                key,
            ).fetchone() or (None,)
            if force_start or latest_end is None:
                start = backfill_start
            else:
                start = max(min(latest_end, end) - lookback, backfill_start)
            for lo, hi in split_range(start, end, window):
                conn.execute(
                    "INSERT OR IGNORE INTO sync_windows "
                    "(project_key, environment_key, from_at, to_at, planned_run_id) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [project_key, environment_key, lo, hi, run_id],
                )
                conn.execute(
                    "UPDATE sync_windows SET done_run_id = NULL WHERE project_key = ? "
                    "AND environment_key = ? AND from_at = ? AND to_at = ?",
                    [project_key, environment_key, lo, hi],
                )
                window_ = Window(project_key, environment_key, lo, hi)
                if window_ not in planned:
                    planned.append(window_)
        conn.execute("COMMIT")
    except duckdb.Error as exc:
        conn.execute("ROLLBACK")
        raise WarehouseError(f"planning deployment windows failed: {exc}") from None
    return planned


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
