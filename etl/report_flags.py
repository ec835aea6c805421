"""The report's flags section: release frequency, experimentation, flag health by team.

Read from the views `release_frequency_weekly`, `experimentation_coverage_weekly` and
`flag_health` (docs/metrics.md) through the report's read-only connection; rendered as SVG
and HTML like the rest of the page (`etl.report`), every warehouse value escaped.
"""

from __future__ import annotations

from collections import defaultdict
from html import escape
from typing import Any

import duckdb

from etl import charts
from etl.charts import Series

WEEKS = 26
SIZES = (("small", "#9cc3f0"), ("medium", "#4a86d8"), ("large", "#1f4fb0"))
COVERAGE = "#8e5bd6"
Row = dict[str, Any]


def _rows(conn: duckdb.DuckDBPyConnection, sql: str) -> list[Row]:
    result = conn.execute(sql)
    columns = [d[0] for d in result.description or []]
    return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="scroll">{table}</div>'


TITLE = "Releases, experiments and flag health"


def section(conn: duckdb.DuckDBPyConnection) -> tuple[str, str, str]:
    """(id, title, html) of the flags section; a warehouse without flag data says so."""
    try:
        return "releases", TITLE, _section(conn)
    except duckdb.CatalogException:  # a warehouse no sync of this version has migrated yet
        return "releases", TITLE, '<p class="empty">Sync with this version to see flags.</p>'


def _section(conn: duckdb.DuckDBPyConnection) -> str:
    weeks = _rows(
        conn,
        f"""
        SELECT week_start, sum(small) AS small, sum(medium) AS medium, sum(large) AS large,
            sum(releases) AS releases, sum(releases) / 7.0 AS per_day
        FROM release_frequency_weekly GROUP BY ALL ORDER BY week_start DESC LIMIT {WEEKS}""",
    )[::-1]
    coverage = {
        r["week_start"]: r["coverage"]
        for r in _rows(conn, """
            SELECT week_start, sum(with_experiment) / nullif(sum(releases), 0) AS coverage
            FROM experimentation_coverage_weekly GROUP BY ALL""")
    }  # fmt: skip
    health = _rows(
        conn,
        """
        SELECT coalesce(maintainer_team_name, maintainer_team_key) AS team, maintainer_team_key,
            project_key, environment_key, flag_key, status, stale, reason, maintainer_id,
            last_evaluated_at, creation_date
        FROM flag_health WHERE temporary AND NOT archived
        ORDER BY team NULLS LAST, stale DESC, project_key, flag_key, environment_key""",
    )
    if not weeks and not health:
        return '<p class="empty">No flag data yet (streams flags, flag_statuses, flag_events).</p>'
    return (
        '<div class="grid">'
        + _frequency(weeks)
        + _coverage(weeks, coverage)
        + "</div>"
        + _health(health)
    )


def _frequency(weeks: list[Row]) -> str:
    if not weeks:
        return '<p class="empty">No flag events yet.</p>'
    labels = [f"{w['week_start']:%b %d}" for w in weeks]
    series = [Series(size, [float(w[size]) for w in weeks], color) for size, color in SIZES]
    recent = weeks[-1]
    return (
        "<figure><figcaption>Release frequency: impactful flag changes per week, by impact "
        f"<small>latest week {recent['per_day']:.1f} a day</small></figcaption>"
        f"{charts.legend(series)}"
        f"{charts.stacked_bars(labels, series, label='Impactful flag changes per week')}"
        "</figure>"
    )


def _coverage(weeks: list[Row], coverage: dict[Any, float | None]) -> str:
    if not weeks:
        return ""
    labels = [f"{w['week_start']:%b %d}" for w in weeks]
    values = [coverage.get(w["week_start"]) for w in weeks]
    line = Series(
        "tied to an experiment", [None if v is None else v * 100 for v in values], COVERAGE
    )
    return (
        "<figure><figcaption>Experimentation coverage: share of impactful changes tied to an "
        "experiment</figcaption>"
        f"{charts.legend([line])}"
        f"{charts.lines(labels, [line], label='Experimentation coverage', unit='%')}"
        "</figure>"
    )


def _health(rows: list[Row]) -> str:
    """Temporary flags by maintainer team: how many are stale, then each stale one."""
    if not rows:
        return '<p class="empty">No flag statuses yet.</p>'
    teams: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        teams[row["team"] or "no team"].append(row)
    summary = [
        [escape(team), f"{sum(r['stale'] for r in items)}", f"{len(items)}",
         f"{sum(r['stale'] for r in items) / len(items):.0%}"]
        for team, items in teams.items()
    ]  # fmt: skip
    stale = [
        [escape(team), escape(r["project_key"]), escape(r["flag_key"]),
         escape(r["environment_key"]), escape(r["reason"]), escape(r["maintainer_id"] or "—"),
         "never" if r["last_evaluated_at"] is None else f"{r['last_evaluated_at']:%Y-%m-%d}"]
        for team, items in teams.items() for r in items if r["stale"]
    ]  # fmt: skip
    details = (
        f"<details><summary>{len(stale)} stale flag-environments</summary>"
        + _table(["team", "project", "flag", "environment", "reason", "maintainer",
                  "last evaluation"], stale)
        + "</details>"
        if stale
        else '<p class="empty">No stale flags.</p>'
    )  # fmt: skip
    return (
        "<h3>Flag health by maintainer team <small>stale: temporary, not archived, ≥ 30 days "
        "old, inactive or launched for ≥ 7 days (LaunchDarkly's rule), per environment"
        "</small></h3>"
        + _table(["team", "stale", "temporary flag-environments", "stale share"], summary)
        + details
    )
