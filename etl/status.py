"""`etl status`: how fresh each stream is and how the last runs went, from the run ledger.

Built for monitoring as much as for people: the exit code says whether to worry.
0 fine · 1 the last run failed (or was killed) · 3 the last run was partial · 4 a stream's
data is older than `--max-age` (or was never loaded). A stream is fresh as of the end of the
last run that loaded it without error, whatever the run's overall outcome.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from etl.config import WarehouseSettings
from etl.errors import ConfigError, WarehouseError
from etl.lastrun import read_last_run
from etl.warehouse import open_reader

EXIT_OK, EXIT_FAILED, EXIT_PARTIAL, EXIT_STALE = 0, 1, 3, 4
FINISHED = ("succeeded", "partial", "failed", "abandoned")

_AGE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNIT = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_age(text: str) -> timedelta:
    """`90s`, `30m`, `6h`, `2d` as a timedelta.

    Raises:
        ConfigError: the text is not a number and one of s, m, h, d.
    """
    match = _AGE.match(text.strip().lower())
    if match is None:
        raise ConfigError(f"--max-age: {text!r} is not an age such as 30m, 6h or 2d")
    return timedelta(**{_UNIT[match.group(2)]: float(match.group(1))})


@dataclass(frozen=True)
class StreamRequests:
    """One stream's share of a run: loaded records and the API requests it cost."""

    stream: str
    status: str
    records: int
    requests: int | None
    rate_limited: int | None
    retries: int | None


@dataclass(frozen=True)
class Run:
    """One row of the ledger."""

    run_id: str
    status: str
    started_at: datetime
    ended_at: datetime | None
    requests: int
    rate_limited: int
    error: str | None
    streams: list[StreamRequests]

    @property
    def records(self) -> int:
        """Records loaded by the run, all streams."""
        return sum(stream.records for stream in self.streams)


@dataclass(frozen=True)
class Freshness:
    """When a stream last loaded without error, and how long ago (None: never)."""

    stream: str
    loaded_at: datetime | None
    age: timedelta | None
    run_id: str | None


@dataclass
class Status:
    """What `etl status` shows, and the exit code it implies."""

    freshness: list[Freshness]
    runs: list[Run]
    max_age: timedelta | None
    problems: list[str] = field(default_factory=list)
    exit_code: int = EXIT_OK


def _streams(raw: str | None) -> list[StreamRequests]:
    rows = []
    for name, value in orjson.loads(raw or "{}").items():
        api: dict[str, Any] = value.get("api") or {}
        counts = (api.get("requests"), api.get("rate_limited"), api.get("retries"))
        status = value.get("status", "?")
        rows.append(StreamRequests(name, status, int(value.get("records", 0)), *counts))
    return rows


def read_status(
    path: Path,
    streams: list[str],
    now: datetime,
    *,
    limit: int,
    max_age: timedelta | None,
    settings: WarehouseSettings | None = None,
) -> Status:
    """Freshness of `streams` and the last `limit` runs of the warehouse at `path`.

    Freshness is what readers see: the published ledger (a lake's, at the readers' pin). The
    runs add the latest run's own record (`etl.lastrun`; a lake's latest ledger row), since a
    failed or killed run is never published.
    """
    latest = read_last_run(path)
    if latest is None and str(path).startswith("ducklake:"):
        from etl.warehouse.ducklake import DuckLake

        latest = DuckLake(path, settings).last_run()  # the live ledger, past the readers' pin
    try:
        conn = open_reader(path, settings)
    except WarehouseError:
        if latest is None:
            raise
        published: list[Run] = []
    else:
        try:
            rows = conn.execute(
                "SELECT run_id, status, started_at, ended_at, coalesce(requests, 0), "
                "coalesce(rate_limited, 0), error, streams FROM etl_runs ORDER BY started_at DESC"
            ).fetchall()
        finally:
            conn.close()
        published = [Run(*row[:7], streams=_streams(row[7])) for row in rows]  # type: ignore[misc]
    runs = list(published)
    if latest is not None and latest.get("run_id") not in {run.run_id for run in runs}:
        runs.insert(0, _from_record(latest))
    freshness = [_freshness(name, published, now) for name in streams]
    status = Status(freshness, runs[:limit], max_age)
    _judge(status, runs)
    return status


def _from_record(row: dict[str, Any]) -> Run:
    ended = row.get("ended_at")
    return Run(
        str(row.get("run_id")),
        str(row.get("status")),
        datetime.fromisoformat(str(row.get("started_at"))),
        datetime.fromisoformat(ended) if ended else None,
        int(row.get("requests") or 0),
        int(row.get("rate_limited") or 0),
        row.get("error"),
        streams=_streams(orjson.dumps(row.get("streams") or {}).decode()),
    )


def _freshness(name: str, runs: list[Run], now: datetime) -> Freshness:
    for run in runs:
        if run.ended_at is None or run.status not in ("succeeded", "partial"):
            continue
        for stream in run.streams:
            if stream.stream == name and stream.status == "ok":
                return Freshness(name, run.ended_at, now - run.ended_at, run.run_id)
    return Freshness(name, None, None, None)


def _judge(status: Status, runs: list[Run]) -> None:
    finished = [run for run in runs if run.status in FINISHED]
    if not finished:
        status.problems.append("no run has finished yet")
        status.exit_code = EXIT_FAILED
        return
    last = finished[0]
    if last.status in ("failed", "abandoned"):
        status.problems.append(f"the last run {last.run_id} {last.status}: {last.error}")
        status.exit_code = EXIT_FAILED
    elif last.status == "partial":
        status.problems.append(f"the last run {last.run_id} was partial: {last.error}")
        status.exit_code = EXIT_PARTIAL
    if status.max_age is None:
        return
    stale = [f for f in status.freshness if f.age is None or f.age > status.max_age]
    for item in stale:
        when = "never loaded" if item.age is None else f"last loaded {_age(item.age)} ago"
        status.problems.append(
            f"{item.stream}: {when} (more than --max-age {_age(status.max_age)})"
        )
    if stale and status.exit_code == EXIT_OK:
        status.exit_code = EXIT_STALE


def _age(age: timedelta) -> str:
    seconds = int(age.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def describe_age(age: timedelta | None) -> str:
    """An age for a table cell: `42s`, `17m`, `5h03m`, `3d04h`, or `never`."""
    return "never" if age is None else _age(age)
