"""Incremental state and the run ledger (`etl_runs`). The caller owns the connection.

Streams read by time (deployments by `startedAt`, flag events by `eventTime`: a `Timeline`)
are read per (project, environment) ("partition") as cursor chains, newest first, each over
one window of `sync_windows` (its `stream` column tells the timelines apart; the text below
says deployments, the rules are the same for every timeline). Which windows a run reads
(`plan_windows`):

* **Unfinished windows** of earlier runs, from where they stopped: after every committed page
  the window's unread rest shrinks to [from_at, remaining_to), remaining_to being just past
  the oldest `startedAt` committed (inclusive: ties are re-read and merged idempotently).
* **The tail**, one window up to the run's start. A partition with no state, or any with
  `--since`, reads its whole range [backfill start, now) as this one window: one chain, so the
  requests are the floor (⌈deployments ÷ page⌉, at least 1) whatever the range.
  Later runs start the tail at the oldest deployment that was still running at the last run
  (it can still change), else `SETTLE` before the last run's end, never more than
  `lookback` before that end.
* **The re-verification slice**: history older than the tail is re-read by a sweep that
  moves down it at the pace of the whole history (counted in the warehouse) per `reverify`
  period, in whole pages (rounded up), so it costs the floor of the history once per
  period, spread over the runs; a slice that starts at the top joins the tail.

Guarantee (documented in docs/design.md): the next run sees every deployment started since
`SETTLE` before the last run's end and every change to one that was running at the last run
(within `lookback`); every other change to the synced history (archiving, late edits, late
arrivals) is read within one `reverify` period plus one run interval.
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb
import orjson
import polars as pl

from etl.errors import WarehouseError
from etl.warehouse.sqlutil import ident, registered, rollback

SETTLE = timedelta(minutes=10)
"""How far before the last run's end a tail starts at least: a deployment may be reported a
little after it started, and a window edge must not depend on clocks agreeing to the second."""


@dataclass(frozen=True, slots=True)
class Timeline:
    """A stream read by time, newest first: where its records are, and which can change.

    Attributes:
        stream: the stream's name (`sync_windows.stream`, `sync_reverify.stream`).
        table: the warehouse table of its records, with `project_key`, `environment_key`.
        time_column: the record's time in that table (the chain's order and window).
        open_condition: SQL over `table` for a record that can still change (a deployment
            still running), or None: a record never changes once it is there; the tail then
            starts `SETTLE` before the last run's end, and re-verification catches edits.
    """

    stream: str
    table: str
    time_column: str
    open_condition: str | None = None


DEPLOYMENTS = Timeline("deployments", "deployments", "started_at", "d.ended_at IS NULL")


@dataclass(frozen=True, slots=True)
class Window:
    """One time window [from_at, to_at) of one (project, environment) of one stream.

    `read_to` is where its unread rest ends (a window resumed after a killed run); None: the
    whole window is unread.
    """

    project_key: str
    environment_key: str
    from_at: datetime
    to_at: datetime
    read_to: datetime | None = None
    stream: str = "deployments"

    @property
    def unread_to(self) -> datetime:
        """The end (exclusive) of what is left to read."""
        return self.read_to if self.read_to is not None else self.to_at


@dataclass(frozen=True, slots=True)
class _History:
    """What the warehouse knows of one partition before this run."""

    last_end: datetime
    first_from: datetime
    oldest_running: datetime | None
    position: datetime | None
    swept_at: datetime | None


def plan_windows(
    conn: duckdb.DuckDBPyConnection,
    partitions: Sequence[tuple[str, str]],
    *,
    run_id: str,
    backfill_start: datetime,
    end: datetime,
    lookback: timedelta,
    force_start: bool,
    reverify: timedelta,
    page_size: int,
    timeline: Timeline = DEPLOYMENTS,
) -> list[Window]:
    """Decide (and record, in one transaction) the windows this run reads; see the module doc.

    A handful of queries whatever the number of partitions and windows.
    """
    stream = timeline.stream
    keys = pl.DataFrame(
        list(partitions), schema=["project_key", "environment_key"], orient="row"
    ).unique()
    planned: dict[Window, None] = {}  # an ordered set
    conn.execute("BEGIN TRANSACTION")
    try:
        with registered(conn, "_partitions", keys.to_arrow()):
            for project_key, environment_key, lo, hi, remaining_to in conn.execute(
                "SELECT w.project_key, w.environment_key, w.from_at, w.to_at, w.remaining_to "
                "FROM sync_windows w JOIN _partitions p USING (project_key, environment_key) "
                "WHERE w.done_run_id IS NULL AND w.stream = ? ORDER BY w.from_at",
                [stream],
            ).fetchall():
                planned[Window(project_key, environment_key, lo, hi, remaining_to, stream)] = None
            histories = _histories(conn, lookback, timeline)
        if force_start:
            planned = _supersede(conn, planned, backfill_start, end)
        unfinished = {(w.project_key, w.environment_key) for w in planned}
        fresh: list[Window] = []
        sweeps: list[tuple[str, str, datetime | None, datetime]] = []
        for project_key, environment_key in partitions:
            history = histories.get((project_key, environment_key))
            if force_start or history is None:
                if end > backfill_start:
                    fresh.append(
                        Window(project_key, environment_key, backfill_start, end, stream=stream)
                    )
                sweeps.append((project_key, environment_key, None, end))
                continue
            tail = min(max(_tail_start(history, lookback), backfill_start), end)
            # A partition still resuming a window is not swept: its history in the warehouse
            # is incomplete (the slice is counted there), and the due share keeps accruing.
            resuming = (project_key, environment_key) in unfinished
            sweep = None
            if not resuming:
                sweep = _reverify_slice(
                    conn, timeline, (project_key, environment_key), history, tail, end,
                    reverify, page_size,
                )  # fmt: skip
            if sweep is not None:
                if sweep.to_at >= tail:
                    tail = min(tail, sweep.from_at)  # the slice joins the tail: one chain
                else:
                    fresh.append(
                        Window(project_key, environment_key, sweep.from_at, sweep.to_at,
                               stream=stream)
                    )  # fmt: skip
                sweeps.append((project_key, environment_key, sweep.position, sweep.paid_until))
            if end > tail:
                fresh.append(Window(project_key, environment_key, tail, end, stream=stream))
        if fresh:
            with registered(conn, "_fresh", _windows_frame(fresh, run_id).to_arrow()):
                # Replaced by key (DELETE + INSERT: a DuckLake has no PRIMARY KEY to upsert on).
                conn.execute(
                    "DELETE FROM sync_windows w WHERE EXISTS (SELECT 1 FROM _fresh f WHERE "
                    "w.stream = f.stream AND w.project_key = f.project_key "
                    "AND w.environment_key = f.environment_key "
                    "AND w.from_at = f.from_at AND w.to_at = f.to_at)"
                )
                conn.execute("INSERT INTO sync_windows BY NAME SELECT * FROM _fresh")
        if sweeps:
            rows = [[*sweep, stream] for sweep in sweeps]
            conn.executemany(
                "DELETE FROM sync_reverify "
                "WHERE project_key = ? AND environment_key = ? AND stream = ?",
                [[*row[:2], stream] for row in rows],
            )
            conn.executemany(
                "INSERT INTO sync_reverify "
                "(project_key, environment_key, position, swept_at, stream) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )
        conn.execute("COMMIT")
    except duckdb.Error as exc:
        rollback(conn)
        raise WarehouseError(f"planning {stream} windows failed: {exc}") from None
    planned.update(dict.fromkeys(fresh))
    return list(planned)


def _supersede(
    conn: duckdb.DuckDBPyConnection, unfinished: dict[Window, None], start: datetime, end: datetime
) -> dict[Window, None]:
    """With `--since`, drop the unfinished windows the fresh range covers (it re-reads them)."""
    covered = [w for w in unfinished if start <= w.from_at and w.to_at <= end]
    if covered:
        conn.executemany(
            "DELETE FROM sync_windows WHERE stream = ? AND project_key = ? "
            "AND environment_key = ? AND from_at = ? AND to_at = ? AND done_run_id IS NULL",
            [[w.stream, w.project_key, w.environment_key, w.from_at, w.to_at] for w in covered],
        )
    return {w: None for w in unfinished if w not in covered}


def _histories(
    conn: duckdb.DuckDBPyConnection, lookback: timedelta, timeline: Timeline
) -> dict[Any, _History]:
    """What the warehouse knows of each partition in `_partitions` that has windows.

    Its last end, first start, the oldest record still open at the last end (within
    `lookback`; none for a timeline whose records never change), and its sweep.
    """
    table, time = ident(timeline.table), ident(timeline.time_column)
    running = (
        "SELECT NULL::VARCHAR AS project_key, NULL::VARCHAR AS environment_key, "
        "NULL::TIMESTAMPTZ AS oldest WHERE FALSE"
    )
    parameters: list[Any] = [timeline.stream]
    if timeline.open_condition is not None:
        running = (
            f"  SELECT d.project_key, d.environment_key, min(d.{time}) AS oldest"
            f"  FROM {table} d JOIN spans s USING (project_key, environment_key)"
            f"  WHERE {timeline.open_condition}"
            f"    AND d.{time} >= s.last_end - ? AND d.{time} < s.last_end"
            "  GROUP BY ALL"
        )
        parameters.append(lookback)
    parameters.append(timeline.stream)
    rows = conn.execute(
        "WITH spans AS ("
        "  SELECT project_key, environment_key, max(to_at) AS last_end, min(from_at) AS first_from"
        "  FROM sync_windows JOIN _partitions USING (project_key, environment_key)"
        "  WHERE stream = ? GROUP BY ALL"
        f"), running AS ({running}) "
        "SELECT s.project_key, s.environment_key, s.last_end, s.first_from, r.oldest, "
        "  v.position, v.swept_at "
        "FROM spans s LEFT JOIN running r USING (project_key, environment_key) "
        "LEFT JOIN (SELECT * FROM sync_reverify WHERE stream = ?) v "
        "USING (project_key, environment_key)",
        parameters,
    ).fetchall()
    return {(row[0], row[1]): _History(*row[2:]) for row in rows}


def _tail_start(history: _History, lookback: timedelta) -> datetime:
    """Where the tail starts: what can still change at the last run's end, within lookback."""
    start = history.last_end - SETTLE
    if history.oldest_running is not None:
        start = min(start, history.oldest_running)
    return max(start, history.last_end - lookback)


@dataclass(frozen=True, slots=True)
class _Slice:
    """The history a run re-verifies, [from_at, to_at), and where the sweep goes next."""

    from_at: datetime
    to_at: datetime
    position: datetime | None
    """The next slice ends here; None: it starts again at the top."""
    paid_until: datetime
    """The next slice is due at the first run that ends at or after this."""


def _reverify_slice(
    conn: duckdb.DuckDBPyConnection,
    timeline: Timeline,
    partition: tuple[str, str],
    history: _History,
    top: datetime,
    end: datetime,
    period: timedelta,
    page_size: int,
) -> _Slice | None:
    """The slice of history this run re-verifies; None when none is due.

    The sweep moves down the partition's history below the tail at the pace of one whole
    history (counted in the warehouse) per `period`. A run that finds it due (`paid_until`
    reached) reads the deployments that came due since, rounded up to whole pages (at least
    one), and the sweep is paid until the moment the last of them would have come due. So
    each deployment is re-read no later than a continuous sweep would (within the period,
    plus one run interval), no slice but the oldest ends in a partly filled page, and the
    sweep costs the floor of the history once per period, spread over the runs.
    """
    if period <= timedelta(0) or top <= history.first_from:
        return None
    paid_until = history.swept_at or history.last_end
    if end < paid_until:
        return None
    position = history.position
    if position is None or position > top or position <= history.first_from:
        position = top
    table, time = ident(timeline.table), ident(timeline.time_column)
    partition_range = f"project_key = ? AND environment_key = ? AND {time} >= ?"
    count_row = conn.execute(
        f"SELECT count(*), count(*) FILTER (WHERE {time} < ?) FROM {table} "
        f"WHERE {partition_range} AND {time} < ?",
        [position, *partition, history.first_from, top],
    ).fetchone()
    total, below = (int(count_row[0]), int(count_row[1])) if count_row else (0, 0)
    if total == 0:  # nothing to count by: the (empty) history once per period
        return _Slice(history.first_from, top, None, end + period)
    due = (end - paid_until) / period * total
    if due >= total:  # a gap longer than the period: all of it, from the top
        return _Slice(history.first_from, top, None, end + period / total * page_size)
    take = min(page_size * max(1, math.ceil(due / page_size)), below)
    paid = paid_until + period * (take / total)
    row = None
    if take < below:
        row = conn.execute(
            f"SELECT {time} FROM {table} WHERE {partition_range} AND {time} < ? "
            f"ORDER BY {time} DESC LIMIT 1 OFFSET ?",
            [*partition, history.first_from, position, take - 1],
        ).fetchone()
    if row is None or row[0] <= history.first_from:
        return _Slice(history.first_from, position, None, paid)
    return _Slice(row[0], position, row[0], paid)


def _windows_frame(windows: Sequence[Window], run_id: str) -> pl.DataFrame:
    """New windows as rows of `sync_windows`: planned by this run, nothing of them read."""
    timestamp = pl.Datetime("us", "UTC")
    nothing = pl.Series([None] * len(windows), dtype=timestamp)
    return pl.DataFrame(
        {
            "stream": [w.stream for w in windows],
            "project_key": [w.project_key for w in windows],
            "environment_key": [w.environment_key for w in windows],
            "from_at": pl.Series([w.from_at for w in windows], dtype=timestamp),
            "to_at": pl.Series([w.to_at for w in windows], dtype=timestamp),
            "planned_run_id": [run_id] * len(windows),
            "done_run_id": pl.Series([None] * len(windows), dtype=pl.String),
            "remaining_to": nothing,
        }
    )


# A run still `running` on another host after this long is taken as dead (its process
# cannot be checked from here). Wrongly abandoned, a live run corrects its row as it finishes.
ABANDON_AFTER = timedelta(hours=24)


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def run_is_dead(host: str | None, pid: int | None, started_at: datetime, now: datetime) -> bool:
    """Whether a run still marked `running` has ended without saying so (killed, crashed).

    Several syncs may write one warehouse at once, so a run is dead only when that is known:
    its process on this host is gone, or it started on another host over `ABANDON_AFTER`
    ago. A row from before runs recorded their process (no host) is dead.
    """
    if host is None or pid is None:
        return True
    if host == socket.gethostname():
        return _process_gone(pid)
    return now - started_at > ABANDON_AFTER


def start_run(
    conn: duckdb.DuckDBPyConnection, run_id: str, started_at: datetime, options: Mapping[str, Any]
) -> None:
    """Record a new run, and mark abandoned the runs still `running` whose process is dead.

    One transaction. A concurrent sync's live run is left alone (`run_is_dead`).
    """
    conn.execute("BEGIN TRANSACTION")
    try:
        running = conn.execute(
            "SELECT run_id, host, pid, started_at FROM etl_runs WHERE status = 'running'"
        ).fetchall()
        dead = [row[0] for row in running if run_is_dead(row[1], row[2], row[3], started_at)]
        if dead:
            conn.execute(
                "UPDATE etl_runs SET status = 'abandoned', error = 'the process ended before "
                "the run finished (killed or crashed); its committed batches were kept' "
                "WHERE run_id IN (SELECT unnest(?::VARCHAR[]))",
                [dead],
            )
        conn.execute(
            "INSERT INTO etl_runs (run_id, started_at, status, options, host, pid) "
            "VALUES (?, ?, 'running', ?, ?, ?)",
            [run_id, started_at, orjson.dumps(options).decode(), socket.gethostname(), os.getpid()],
        )
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise


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
