"""What the CLI prints: run summaries, the ledger, query results (rich tables)."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

import duckdb
import orjson
from rich.console import Console
from rich.table import Table

from etl.errors import WarehouseError
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


def print_runs(path: Path, limit: int) -> None:
    """The latest runs of the ledger."""
    conn = open_reader(path)
    try:
        rows = conn.execute(
            "SELECT run_id, status, started_at, ended_at, requests, retries, rate_limited, "
            "streams, error FROM etl_runs ORDER BY started_at DESC LIMIT ?",
            [limit],
        ).fetchall()
    finally:
        conn.close()
    table = Table(title=f"runs in {path}")
    for column in ("run", "status", "started", "seconds", "records", "requests", "429s", "error"):
        table.add_column(column)
    for run_id, status, started, ended, requests, _retries, limited, streams, error in rows:
        records = sum(s.get("records", 0) for s in orjson.loads(streams or "{}").values())
        seconds = f"{(ended - started).total_seconds():.1f}" if ended else "-"
        table.add_row(
            run_id, status, f"{started:%Y-%m-%d %H:%M:%S}", seconds, f"{records:,}",
            str(requests or 0), str(limited or 0), (error or "")[:80],
        )  # fmt: skip
    console.print(table)


def run_query(path: Path, query: str, fmt: str) -> None:
    """Run `query` read-only and print it as a table, CSV or JSON lines."""
    conn = open_reader(path)
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
