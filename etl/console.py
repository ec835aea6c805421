"""What the CLI prints: run summaries, the ledger, query results (rich tables)."""

from __future__ import annotations

import csv
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text

from etl.config import WarehouseSettings
from etl.doctor import Check
from etl.errors import WarehouseError
from etl.status import Status, describe_age
from etl.sync import RunReport
from etl.warehouse import open_reader

# Piped output (CI logs, files) gets a wide fixed width instead of rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)


def print_report(report: RunReport) -> None:
    """One table: records and status per stream, then requests, retries and 429s."""
    took = (report.ended_at - report.started_at).total_seconds() if report.ended_at else 0.0
    table = Table(title=f"run {report.run_id}: {report.status} in {took:.1f}s")
    table.add_column("stream")
    table.add_column("records", justify="right")
    table.add_column("status")
    for name, stream in report.streams.items():
        status = stream.status if not stream.errors else f"failed ({len(stream.errors)})"
        table.add_row(name, f"{stream.records:,}", status)
    console.print(table)
    console.print(
        f"requests {report.requests:,} · retries {report.retries:,} · "
        f"rate limited (429) {report.rate_limited:,}"
    )
    for name, stream in report.streams.items():
        for error in stream.errors[:5]:
            console.print(f"[red]{name}[/red]: {error}", markup=True, highlight=False)
        for warning in stream.warnings[:5]:
            console.print(f"[yellow]{name}[/yellow]: {warning}", markup=True, highlight=False)


def print_status(status: Status, path: Path) -> None:
    """Freshness per stream, the last runs with each stream's requests and 429s, problems."""
    fresh = Table(title=f"freshness in {path} (UTC)")
    for column in ("stream", "last loaded", "age", "by run"):
        fresh.add_column(column)
    for item in status.freshness:
        stale = status.max_age is not None and (item.age is None or item.age > status.max_age)
        age = describe_age(item.age)
        fresh.add_row(
            item.stream,
            f"{item.loaded_at:%Y-%m-%d %H:%M:%S}" if item.loaded_at else "-",
            f"[red]{age}[/red]" if stale else age,
            item.run_id or "-",
        )
    console.print(fresh)
    runs = Table(title="last runs: records loaded; requests, 429s and retries per stream")
    for column in ("run", "status", "started", "seconds", "stream", "records", "requests",
                   "429s", "retries"):  # fmt: skip
        runs.add_column(column, justify="right" if column in _NUMERIC else "left")
    for run in status.runs:
        seconds = f"{(run.ended_at - run.started_at).total_seconds():.1f}" if run.ended_at else "-"
        head = [run.run_id, run.status, f"{run.started_at:%Y-%m-%d %H:%M:%S}", seconds]
        runs.add_row(*head, "all", f"{run.records:,}", f"{run.requests:,}",
                     str(run.rate_limited), "", end_section=not run.streams)  # fmt: skip
        for index, stream in enumerate(run.streams):
            runs.add_row(
                "", "", "", "", stream.stream, f"{stream.records:,}", _count(stream.requests),
                _count(stream.rate_limited), _count(stream.retries),
                end_section=index == len(run.streams) - 1,
            )  # fmt: skip
    console.print(runs)
    for problem in status.problems:
        console.print(Text.assemble(("problem: ", "red"), problem))


_NUMERIC = {"seconds", "records", "requests", "429s", "retries"}


def _count(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


_MARKS = {"ok": "[green]ok[/green]", "warn": "[yellow]warn[/yellow]", "FAIL": "[red]FAIL[/red]",
          "skipped": "[dim]skipped[/dim]"}  # fmt: skip


def print_json(value: Any) -> None:
    """Dataclasses (and lists of them) as indented JSON on stdout; ages in seconds."""
    text = orjson.dumps(value, option=orjson.OPT_INDENT_2, default=_seconds).decode()
    sys.stdout.write(text + "\n")


def _seconds(value: Any) -> float:
    if isinstance(value, timedelta):
        return value.total_seconds()
    raise TypeError(f"not JSON: {type(value).__name__}")


def print_checks(rows: list[Check]) -> None:
    """The doctor's table: check, outcome, what was found, and how to fix a failure."""
    table = Table(title="etl doctor")
    for column in ("check", "result", "detail", "fix"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(Text(row.name), _MARKS[row.outcome], Text(row.detail), Text(row.fix))
    console.print(table)


def run_query(path: Path, query: str, fmt: str, settings: WarehouseSettings | None = None) -> None:
    """Run `query` read-only and print it as a table, CSV or JSON lines."""
    conn = open_reader(path, settings)
    try:
        try:
            result = conn.execute(query)
            columns = [d[0] for d in result.description or []]
            rows = result.fetchall()
        except duckdb.Error as exc:
            raise WarehouseError(f"query failed: {exc}") from None
    finally:
        conn.close()
    if fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
    elif fmt == "json":
        for row in rows:
            sys.stdout.write(
                orjson.dumps(dict(zip(columns, row, strict=True)), default=str).decode()
            )
            sys.stdout.write("\n")
    else:
        table = Table()
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*(_cell(value) for value in row))
        console.print(table)


def _cell(value: Any) -> str:
    return "" if value is None else str(value)
