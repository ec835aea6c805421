"""Figures (median and spread of several runs), the printed table and the JSON file."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench.procs import REPO

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Figure:
    """One printed figure: the values of every run, summarised as median [min–max]."""

    scenario: str
    setting: str
    label: str
    values: list[float]
    unit: str = ""
    bound: str = ""
    goal: str = ""
    check: Callable[[float], bool] | None = field(default=None, repr=False)
    note: str = ""
    digits: int = 2

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None

    @property
    def met(self) -> bool | None:
        """Whether the median meets the goal (None: no goal or no value)."""
        if self.check is None or self.median is None:
            return None
        return bool(self.check(self.median))

    def fmt(self, value: float) -> str:
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{self.digits}f}"

    def shown(self) -> str:
        if not self.values:
            return "—"
        median = f"{self.fmt(self.median or 0)}{self.unit}"
        if len(self.values) == 1:
            return f"{median} (n=1)"
        low, high = min(self.values), max(self.values)
        return f"{median} [{self.fmt(low)}–{self.fmt(high)}] n={len(self.values)}"

    def as_json(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "check"}
        data["median"] = self.median
        data["min"] = min(self.values) if self.values else None
        data["max"] = max(self.values) if self.values else None
        data["met"] = self.met
        return data


def print_table(figures: Sequence[Figure], console: Console, title: str) -> None:
    table = Table(title=escape(title), show_lines=True)
    table.add_column("scenario", overflow="fold", max_width=28)
    table.add_column("what bounds it", overflow="fold", max_width=26)
    table.add_column("figure", overflow="fold", max_width=34)
    table.add_column(escape("median [min–max] n"), overflow="fold", justify="right")
    table.add_column("goal", overflow="fold", max_width=12)
    table.add_column("met", justify="center")
    for figure in figures:
        met = {True: "[green]yes[/]", False: "[red]no[/]", None: "—"}[figure.met]
        scenario = f"[bold]{escape(figure.scenario)}[/]\n[dim]{escape(figure.setting)}[/]"
        label = escape(figure.label) + (f"\n[dim]{escape(figure.note)}[/]" if figure.note else "")
        table.add_row(
            scenario,
            escape(figure.bound or "—"),
            label,
            escape(figure.shown()),
            escape(figure.goal or "—"),
            met,
        )
    console.print(table)


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "etl"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return "unknown"
    return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def environment() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "commit": _git_commit(),
    }


def write_json(
    figures: Sequence[Figure], runs: dict[str, Any], meta: dict[str, Any], started: datetime
) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{started:%Y%m%dT%H%M%SZ}.json"
    payload = {
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "environment": environment(),
        **meta,
        "figures": [figure.as_json() for figure in figures],
        "runs": runs,
    }
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    return path
